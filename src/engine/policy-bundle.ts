import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** The files `npm run build:policies` publishes into the bundle directory. */
export interface PolicyBundle {
  wasm: Buffer;
  data: PolicyData;
  /** Content hash of policy.wasm + data.json; the policy revision. */
  revision: string;
}

export interface ActionSpec {
  permission: string;
  entitlement?: string;
  flag?: string;
  meter?: string;
  access: "read" | "write" | "billing";
  /** The action lets customer data leave (an export): impersonating staff need explicit leave for it. */
  customer_data?: boolean;
}

export interface PolicyData {
  bulkhead: {
    actions: Record<string, ActionSpec>;
    roles: Record<string, string[]>;
    billing_access: Record<string, string>;
    staff_roles: Record<string, { impersonation_access: string[]; customer_data_export: boolean }>;
  };
}

export function bundleRevision(wasm: Buffer, dataJson: Buffer): string {
  return createHash("sha256").update(wasm).update(dataJson).digest("hex").slice(0, 16);
}

/**
 * Reads a bundle and checks that bundle.json (written last by the build)
 * names exactly these files, so a bundle caught mid-publish is refused rather
 * than half-loaded.
 */
export async function readPolicyBundle(dir: string): Promise<PolicyBundle> {
  const [wasm, dataJson, manifestJson] = await Promise.all([
    readFile(join(dir, "policy.wasm")),
    readFile(join(dir, "data.json")),
    readFile(join(dir, "bundle.json"), "utf8"),
  ]);
  const manifest = JSON.parse(manifestJson) as { revision?: unknown };
  const revision = bundleRevision(wasm, dataJson);
  if (manifest.revision !== revision) {
    throw new Error(`bundle.json names revision ${String(manifest.revision)} but the files hash to ${revision}`);
  }
  return { wasm, data: parsePolicyData(dataJson), revision };
}

const ACCESS_LEVELS = new Set(["read", "write", "billing"]);

/** The catalog drives every gate, so a malformed entry rejects the whole bundle. */
function parsePolicyData(json: Buffer): PolicyData {
  const data = JSON.parse(json.toString("utf8")) as Partial<PolicyData>;
  const b = data.bulkhead;
  if (!b || typeof b.actions !== "object" || typeof b.roles !== "object" || typeof b.billing_access !== "object") {
    throw new Error("data.json lacks bulkhead.actions, bulkhead.roles or bulkhead.billing_access");
  }
  for (const [name, spec] of Object.entries(b.actions)) {
    if (typeof spec?.permission !== "string" || !ACCESS_LEVELS.has(spec.access)) {
      throw new Error(`action catalog entry ${name} needs a permission and access read, write or billing`);
    }
  }
  return data as PolicyData;
}
