import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BulkheadClient, isTrustedContext } from "../../src/client/index.js";
import { createEmbeddedTransport } from "../../src/embedded/index.js";
import type { CheckInput } from "../../src/client/index.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";

// The gRPC transport and the in-process transport over the very same SQLite
// file must answer every request alike, denies and their reasons included.
let sidecar: TestSidecar;
let overGrpc: BulkheadClient;
let inProcess: BulkheadClient;
beforeAll(async () => {
  sidecar = await startSidecar();
  overGrpc = new BulkheadClient({ address: sidecar.grpcAddress });
  inProcess = new BulkheadClient({ transport: await createEmbeddedTransport({ dbPath: sidecar.bulkhead.config.dbPath, log: () => {} }) });
});
afterAll(async () => {
  await inProcess.close();
  await overGrpc.close();
  await sidecar.close();
});

/** [name, request, the reasons the sidecar gives (none: allow)]. */
const CASES: [string, CheckInput, string[]][] = [
  ["owner in own tenant", checkRequest("ten_acme", "usr_alice", "projects.delete"), []],
  ["viewer reads", checkRequest("ten_acme", "usr_bob", "projects.read"), []],
  ["wrong tenant resource", checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"), ["wrong_tenant"]],
  ["non-member", checkRequest("ten_globex", "usr_alice", "projects.read"), ["not_a_member"]],
  ["unknown tenant", checkRequest("ten_nowhere", "usr_alice", "projects.read"), ["not_a_member"]],
  ["wrong role", checkRequest("ten_acme", "usr_bob", "projects.delete"), ["missing_permission"]],
  ["admin here, viewer there", checkRequest("ten_acme", "usr_carol", "projects.create"), ["missing_permission"]],
  ["user posing as service account", checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { principal: { tenantId: "ten_acme", actorId: "usr_alice", actorType: "service_account" } }), ["not_a_member"]],
  ["unknown action", checkRequest("ten_acme", "usr_alice", "analytics.pro"), ["unknown_action"]],
  ["wrong plan", checkRequest("ten_globex", "usr_carol", "analytics.view"), ["not_in_plan"]],
  ["resource without tenant", checkRequest("ten_acme", "usr_alice", "projects.read", ""), ["resource_tenant_missing"]],
];

const verdict = (r: { allow: boolean; reasons: { code: string; details: Record<string, string> }[] }) => ({
  allow: r.allow,
  reasons: r.reasons.map((x) => ({ code: x.code, details: x.details })),
});

describe("gRPC and in-process transports", () => {
  it.each(CASES)("answer alike: %s", async (_name, request, expectedCodes) => {
    const [remote, local] = [await overGrpc.check(request), await inProcess.check(request)];
    expect(verdict(local)).toEqual(verdict(remote));
    expect(codes(remote)).toEqual(expectedCodes);
    expect(remote.allow).toBe(expectedCodes.length === 0);
  });

  it("answer a coalesced batch alike", async () => {
    const requests = CASES.map(([, r]) => r);
    const [remote, local] = await Promise.all([overGrpc.checkMany(requests), inProcess.checkMany(requests)]);
    expect(local.map(verdict)).toEqual(remote.map(verdict));
  });

  it("resolve the same context and refuse a non-member alike", async () => {
    const principal = { tenantId: "ten_acme", actorId: "usr_bob" };
    const [remote, local] = [await overGrpc.resolveContext({ principal }), await inProcess.resolveContext({ principal })];
    // Both are trusted contexts the tenant-scoped helpers accept (test/e2e/tenant-repo.test.ts).
    expect([isTrustedContext(remote), isTrustedContext(local)]).toEqual([true, true]);
    expect({ ...local, storeRevision: 0 }).toEqual({ ...remote, storeRevision: 0 });
    const outsider = { tenantId: "ten_globex", actorId: "usr_bob" };
    const errors = await Promise.all([overGrpc.resolveContext({ principal: outsider }).catch((e) => e), inProcess.resolveContext({ principal: outsider }).catch((e) => e)]);
    expect(errors.map((e) => [e.code, e.details])).toEqual([[errors[0].code, errors[0].details], [errors[0].code, errors[0].details]]);
    expect(errors[0].code).toBe(5); // NOT_FOUND
  });

  it("reject a malformed check with the same code and field", async () => {
    const bad = { principal: { tenantId: "ten_acme" }, action: "projects.read", resource: { type: "project", tenantId: "ten_acme" } };
    const errors = await Promise.all([overGrpc.check(bad, { throwOnError: true }).catch((e) => e), inProcess.check(bad, { throwOnError: true }).catch((e) => e)]);
    expect(errors.map((e) => [e.code, e.metadata.get("bulkhead-field")])).toEqual([[3, ["principal.actor_id"]], [3, ["principal.actor_id"]]]);
  });

  it("see each other's writes on the shared store", async () => {
    const request = checkRequest("ten_globex", "usr_carol", "projects.delete");
    expect(await inProcess.isAllowed(request)).toBe(true);
    sidecar.seed({ memberships: [{ tenantId: "ten_globex", actorId: "usr_carol", role: "viewer" }] });
    expect(verdict(await inProcess.check(request))).toEqual(verdict(await overGrpc.check(request)));
    expect(await inProcess.isAllowed(request)).toBe(false);
    sidecar.seed({ memberships: [{ tenantId: "ten_globex", actorId: "usr_carol", role: "admin" }] });
  });

  it("evaluate a tenant's flags alike, plan rules included, and reject rather than answer when the sidecar is gone", async () => {
    for (const [tenantId, pipelineOn] of [["ten_acme", true], ["ten_globex", false]] as const) {
      const request = { tenantId, actorId: "usr_alice", flagKeys: ["new_export_pipeline", "ai_assistant"] };
      const [remote, local] = [await overGrpc.evaluateFlags(request), await inProcess.evaluateFlags(request)];
      expect(local.flags).toEqual(remote.flags);
      expect(remote.flags.find((f) => f.key === "new_export_pipeline")?.value).toBe(pipelineOn);
    }
    const missing = await overGrpc.evaluateFlags({ actorId: "usr_alice" }).catch((e) => e);
    expect(missing.metadata.get("bulkhead-field")).toEqual(["tenant_id"]);
    const gone = new BulkheadClient({ address: "127.0.0.1:1", deadlineMs: 300 });
    await expect(gone.evaluateFlags({ tenantId: "ten_acme", actorId: "usr_alice" })).rejects.toBeTruthy();
    await gone.close();
  });
});
