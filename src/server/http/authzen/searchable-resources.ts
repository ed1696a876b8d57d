import { readFileSync } from "node:fs";
import { ConfigError } from "../../../config.js";
import { checkId } from "../../../validation.js";
import { isObject, type Properties } from "./authzen-request.js";

/** A resource a host registered so that AuthZEN resource search can find it. */
export interface SearchableResource {
  tenantId: string;
  type: string;
  id: string;
  properties: Properties;
}

/**
 * The resources AuthZEN resource search may answer with, per tenant. Bulkhead
 * keeps no resource table (resources live in the host's database), so a host
 * registers the ones it wants searchable in a JSON file
 * (`BULKHEAD_AUTHZEN_RESOURCES`): `{"resources": [{"tenant_id", "type", "id",
 * "properties"}]}`. Every candidate is still decided by Check.
 */
export class SearchableResources {
  private readonly byTenant = new Map<string, SearchableResource[]>();

  constructor(resources: readonly SearchableResource[] = []) {
    for (const r of resources) {
      const list = this.byTenant.get(r.tenantId) ?? [];
      list.push(r);
      this.byTenant.set(r.tenantId, list);
    }
  }

  /** Only the named tenant's resources: the lookup is keyed by tenant, there is no cross-tenant list. */
  of(tenantId: string, type: string): SearchableResource[] {
    return (this.byTenant.get(tenantId) ?? []).filter((r) => r.type === type);
  }

  static fromFile(path: string): SearchableResources {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new ConfigError(`BULKHEAD_AUTHZEN_RESOURCES: cannot read ${path}: ${(error as Error).message}`);
    }
    const list = isObject(parsed) ? parsed.resources : undefined;
    if (!Array.isArray(list)) throw new ConfigError(`BULKHEAD_AUTHZEN_RESOURCES: ${path} must hold {"resources": [...]}`);
    return new SearchableResources(list.map((r, i) => readResource(r, `${path}: resources[${i}]`)));
  }
}

function readResource(raw: unknown, where: string): SearchableResource {
  if (!isObject(raw)) throw new ConfigError(`BULKHEAD_AUTHZEN_RESOURCES: ${where} must be an object`);
  const id = (name: string): string => {
    const value = raw[name];
    try {
      if (typeof value !== "string") throw new Error("is required");
      checkId(value, name);
      return value;
    } catch (error) {
      throw new ConfigError(`BULKHEAD_AUTHZEN_RESOURCES: ${where}.${name} ${(error as Error).message}`);
    }
  };
  const properties = raw.properties ?? {};
  if (!isObject(properties)) throw new ConfigError(`BULKHEAD_AUTHZEN_RESOURCES: ${where}.properties must be an object`);
  return { tenantId: id("tenant_id"), type: id("type"), id: id("id"), properties };
}
