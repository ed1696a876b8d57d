import { Ajv2020 } from "ajv/dist/2020.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { DEMO_DATASET } from "../demo/demo-dataset.js";
import type { StoreSeed } from "../demo/store-seed.js";
import type { Meter } from "../entitlements/entitlement-store.js";
import type { FlagRule } from "../flags/flag-store.js";
import { UsageError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";

/** A cross-tenant suite as written in YAML (schemas/xtest-suite.schema.json). */
export interface Suite {
  name: string;
  description?: string;
  extends?: "demo";
  plans?: { code: string; entitlements: string[]; limits?: Record<string, { soft?: number | null; hard?: number | null }> }[];
  tenants?: { id: string; slug: string; plan: string; status?: "active" | "suspended" | "deleted"; billing_status?: string; region?: string; tags?: string[] }[];
  actors?: { id: string; type?: "user" | "service_account"; memberships: { tenant: string; role: string; status?: "active" | "suspended" | "invited" }[] }[];
  custom_roles?: { tenant: string; name: string; permissions: string[] }[];
  flags?: { key: string; enabled: boolean; plans?: string[]; percentage?: number }[];
  api_keys?: { id: string; tenant: string; secret: string; scopes: string[] }[];
  resources: { type: string; id: string; tenant: string }[];
  expect?: {
    allow?: { actor: string; tenant: string; actions: string[]; resources?: string[] }[];
    deny?: { actor: string; tenant: string; action: string; resource?: string; reason: string }[];
  };
}

export class SuiteError extends UsageError {
  override readonly name = "SuiteError";
}

const SCHEMA_PATH = join(PACKAGE_ROOT, "schemas", "xtest-suite.schema.json");

/** Reads and validates a suite; errors name the file and the JSON path at fault. */
export function loadSuite(path: string): Suite {
  let document: unknown;
  try {
    document = parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new SuiteError(`${path}: ${(error as Error).message}`);
  }
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const validate = ajv.compile(JSON.parse(readFileSync(SCHEMA_PATH, "utf8")));
  if (!validate(document)) {
    const problems = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "/"} ${e.message}`);
    throw new SuiteError(`${path} is not a valid suite:\n  ${problems.join("\n  ")}`);
  }
  return document as Suite;
}

/** The store state a suite describes, as seed data (demo dataset first when it extends it). */
export function suiteSeeds(suite: Suite): StoreSeed[] {
  const knownMeters = new Set((DEMO_DATASET.meters ?? []).map((m) => m.name));
  const meters: Meter[] = [];
  for (const plan of suite.plans ?? []) {
    for (const name of Object.keys(plan.limits ?? {})) {
      if (knownMeters.has(name)) continue;
      knownMeters.add(name);
      meters.push({ name, kind: name === "seats" ? "seats" : "consumable", reset: "none", description: "from an xtest suite" });
    }
  }
  const seed: StoreSeed = {
    meters: suite.extends === "demo" ? meters : [...(DEMO_DATASET.meters ?? []), ...meters],
    plans: (suite.plans ?? []).map((p) => ({
      code: p.code,
      name: p.code,
      entitlements: p.entitlements,
      limits: Object.entries(p.limits ?? {}).map(([meter, l]) => ({ meter, soft: l.soft ?? null, hard: l.hard ?? null })),
    })),
    tenants: (suite.tenants ?? []).map((t) => ({
      id: t.id,
      slug: t.slug,
      planCode: t.plan,
      ...(t.status && { status: t.status }),
      ...(t.billing_status && { billingStatus: t.billing_status }),
      ...(t.region && { region: t.region }),
      ...(t.tags && { tags: t.tags }),
    })),
    memberships: (suite.actors ?? []).flatMap((a) =>
      a.memberships.map((m) => ({ tenantId: m.tenant, actorId: a.id, role: m.role, actorType: a.type ?? "user", status: m.status ?? "active" })),
    ),
    customRoles: (suite.custom_roles ?? []).map((r) => ({ tenantId: r.tenant, name: r.name, permissions: r.permissions })),
    apiKeys: (suite.api_keys ?? []).map((k) => {
      if (!k.secret.startsWith(`bk_${k.id}.`)) throw new SuiteError(`api_keys ${k.id}: secret must be bk_${k.id}.<43 base64url characters>`);
      return { raw: k.secret, tenantId: k.tenant, name: k.id, scopes: k.scopes };
    }),
    flags: (suite.flags ?? []).map((f) => ({
      key: f.key,
      kind: "release",
      description: "from an xtest suite",
      owner: "xtest",
      risk: "low",
      enabled: f.enabled,
      cleanupAt: null,
      rules: [
        ...(f.plans ? [{ rule: "plans", params: { plans: f.plans } } as FlagRule] : []),
        ...(f.percentage !== undefined ? [{ rule: "percentage", params: { percentage: f.percentage, bucketing: 1 } } as FlagRule] : []),
      ],
    })),
  };
  return suite.extends === "demo" ? [DEMO_DATASET, seed] : [seed];
}
