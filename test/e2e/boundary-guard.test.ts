import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createDecisionCore } from "../../src/compose.js";
import { validateCheck } from "../../src/decision/check-input.js";
import { DEMO_DATASET } from "../../src/demo/demo-dataset.js";
import { applySeed } from "../../src/demo/store-seed.js";
import { readPolicyBundle } from "../../src/engine/policy-bundle.js";
import { fixedPolicy } from "../../src/engine/policy-source.js";
import { PolicySet } from "../../src/engine/policy-set.js";
import { ulidGenerator } from "../../src/ids.js";
import { openDatabase } from "../../src/store/database.js";
import { buildVariantBundle, editFile } from "../support/policy-builds.js";
import { checkRequest } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// A policy that forgot the tenant comparison, loaded past the smoke cases:
// the host-side guard must still refuse the cross-tenant allow.
const leakyDir = buildVariantBundle((src) => {
  editFile(join(src, "bulkhead", "checks.rego"), /resource_tenant\n\tnot same_tenant/, "resource_tenant\n\tfalse");
  editFile(join(src, "bulkhead", "decision.rego"), "\tchecks.same_tenant\n", "");
});

async function coreWith(boundaryGuard: boolean) {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-guard-")), "g.db"));
  const policy = await PolicySet.load(await readPolicyBundle(leakyDir), { smokeTest: false });
  const clock = testClock();
  const runtime = { clock, ids: ulidGenerator(clock), log: () => {} };
  const core = createDecisionCore(db, fixedPolicy(policy), runtime, { boundaryGuard });
  applySeed(core.writer, core.stores, DEMO_DATASET);
  return core;
}

const crossTenant = validateCheck(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex") as never);

describe("host-side boundary guard", () => {
  it("denies a cross-tenant request a leaky policy allowed", async () => {
    const decision = await (await coreWith(true)).decider.check(crossTenant);
    expect(decision.allow).toBe(false);
    expect(decision.reasons.map((r) => r.code)).toEqual(["wrong_tenant"]);
  });

  it("is what stops it: without the guard the same policy leaks", async () => {
    expect((await (await coreWith(false)).decider.check(crossTenant)).allow).toBe(true);
  });

  it("rejects a bundle whose catalog entry has no access level", async () => {
    const sloppy = buildVariantBundle((src) =>
      editFile(join(src, "bulkhead", "actions", "data.json"), '"entitlement": "projects", "access": "read"}', '"entitlement": "projects"}'),
    );
    await expect(readPolicyBundle(sloppy)).rejects.toThrow(/projects.read needs a permission and access/);
  });
});
