import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BulkheadClient, UNAVAILABLE_REASON } from "../../src/client/index.js";
import type { CheckRequest, CheckResponse } from "../../src/gen/bulkhead/v1/decision.js";
import { checkRequest, codes, startSidecar, type DeepPartialRequest, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// BatchCheck answers every item on its own (ADR 56), against a real sidecar:
// the gRPC server, the compiled Wasm policy and a SQLite file with the demo data.
const EXPORTS = "exports.csv.monthly";
let sidecar: TestSidecar;
let client: BulkheadClient;
beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock: testClock() } });
  client = new BulkheadClient({ address: sidecar.grpcAddress });
});
afterAll(async () => {
  await client.close();
  await sidecar.close();
});

const withId = (request: DeepPartialRequest<CheckRequest>, requestId: string) => ({ ...request, principal: { ...request.principal, requestId } });
const good = [
  withId(checkRequest("ten_acme", "usr_alice", "reports.export"), "ok-1"),
  withId(checkRequest("ten_acme", "usr_bob", "projects.delete"), "ok-2"),
  withId(checkRequest("ten_globex", "usr_carol", "projects.read"), "ok-3"),
];
const verdict = (r: CheckResponse) => ({ allow: r.allow, reasons: codes(r), error: r.error });
const itemError = (r: CheckResponse) => ({ allow: r.allow, reasons: r.reasons, decisionId: r.decisionId, code: r.error?.code, field: r.error?.field });

describe("BatchCheck with a malformed item", () => {
  it.each([
    ["a bad tenant id", { ...good[0]!, principal: { tenantId: "ten acme", actorId: "usr_alice", requestId: "bad" } }, "principal.tenant_id"],
    ["a malformed action", { ...withId(good[0]!, "bad"), action: "Reports Export!" }, "action"],
    ["a missing action", { ...withId(good[0]!, "bad"), action: "" }, "action"],
    ["a missing resource", { ...withId(good[0]!, "bad"), resource: undefined }, "resource"],
    ["a missing principal", { action: "projects.read", resource: { type: "project", tenantId: "ten_acme" } }, "principal"],
  ])("answers the others as single Checks do, and %s with its own error", async (_what, bad, field) => {
    const checks = [good[0]!, bad, good[1]!, good[2]!];
    const { results } = await sidecar.batchCheck({ checks });
    expect(results).toHaveLength(4);
    const singles = await Promise.all(good.map((r) => sidecar.check(r)));
    expect([results[0]!, results[2]!, results[3]!].map(verdict)).toEqual(singles.map(verdict));
    expect(results.map((r) => r.requestId)).toEqual(["ok-1", "principal" in bad ? "bad" : "", "ok-2", "ok-3"]);
    // Fail closed: a client reading only `allow` sees a deny.
    expect(itemError(results[1]!)).toEqual({ allow: false, reasons: [], decisionId: "", code: "REQUEST_INVALID_ARGUMENT", field });
    expect(results[1]!.error!.message).toContain(field);
    // The batch really decided both ways around the bad item.
    expect(results.map((r) => r.allow)).toEqual([true, false, false, true]);
  });

  it("answers an action outside the catalog as a deny, not an error", async () => {
    const { results } = await sidecar.batchCheck({ checks: [good[0]!, checkRequest("ten_acme", "usr_alice", "projects.teleport")] });
    expect(results.map(verdict)).toEqual([
      { allow: true, reasons: [], error: undefined },
      { allow: false, reasons: ["unknown_action"], error: undefined },
    ]);
  });

  it("denies a wrong-tenant item and answers the others, beside a malformed one", async () => {
    const crossTenant = checkRequest("ten_acme", "usr_alice", "reports.export", "ten_globex");
    const bad = { ...good[1]!, principal: { tenantId: "ten_acme", actorId: "usr bob" } };
    const { results } = await sidecar.batchCheck({ checks: [crossTenant, good[0]!, bad, good[2]!] });
    expect(codes(results[0]!)).toEqual(["wrong_tenant"]);
    expect(results.map((r) => r.allow)).toEqual([false, true, false, true]);
    expect(results[2]!.error?.field).toBe("principal.actor_id");
  });

  it("answers a batch of only malformed items with one error each", async () => {
    const { results } = await sidecar.batchCheck({ checks: [{ action: "" }, { action: "" }] });
    expect(results.map((r) => [r.allow, r.error?.field])).toEqual([[false, "principal"], [false, "principal"]]);
  });

  it("still refuses more items than the limit as a whole", async () => {
    const error = await sidecar.batchCheck({ checks: Array.from({ length: 1001 }, () => good[0]!) }).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["checks"]);
  });
});

describe("a consuming batch stays one all-or-nothing write", () => {
  let n = 0;
  function tenant(used: number): string {
    const id = `ten_batch_${n++}`;
    sidecar.seed({
      tenants: [{ id, slug: id.replace(/_/g, "-"), planCode: "pro" }],
      memberships: [{ tenantId: id, actorId: `usr_${id}`, role: "owner" }],
      usage: [{ tenantId: id, meter: EXPORTS, used }],
    });
    return id;
  }
  const used = async (tenantId: string) => (await sidecar.entitlements.get({ tenantId })).limits.find((l) => l.meter === EXPORTS)!.used;
  const exportCheck = (t: string, key: string, consume = 1) => checkRequest(t, `usr_${t}`, "reports.export", t, { consume, idempotencyKey: key });

  it("charges every item of a well-formed consuming batch", async () => {
    const t = tenant(10);
    const { results } = await sidecar.batchCheck({ checks: [exportCheck(t, "a"), exportCheck(t, "b", 2)] });
    expect(results.map((r) => r.allow)).toEqual([true, true]);
    expect(await used(t)).toBe(13);
  });

  it("fails the whole call and charges nothing when a non-consuming item is malformed", async () => {
    const t = tenant(10);
    const bad = { ...checkRequest(t, `usr_${t}`, "reports.export"), action: "" };
    const error = await sidecar.batchCheck({ checks: [exportCheck(t, "c", 3), bad, exportCheck(t, "d")] }).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["checks[1].action"]);
    expect(await used(t)).toBe(10);
  });

  it("fails the whole call when the malformed item is the one asking to consume", async () => {
    const t = tenant(10);
    const noKey = checkRequest(t, `usr_${t}`, "reports.export", t, { consume: 1 });
    const error = await sidecar.batchCheck({ checks: [good[0]!, noKey] }).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["checks[1].idempotency_key"]);
    expect(await used(t)).toBe(10);
  });
});

describe("client batchCheck", () => {
  it("hands the host each item's decision or error", async () => {
    const bad = { ...good[0]!, principal: { tenantId: "ten/acme", actorId: "usr_alice", requestId: "bad" } };
    const answers = await client.batchCheck([good[0]!, bad, good[2]!]);
    expect(answers.map((a) => a.allow)).toEqual([true, false, true]);
    expect(answers[1]!.error).toMatchObject({ code: "REQUEST_INVALID_ARGUMENT", field: "principal.tenant_id" });
    expect(answers[0]!.error).toBeUndefined();
  });

  it("answers every item with the unavailable deny when the call fails", async () => {
    const answers = await client.batchCheck(Array.from({ length: 1001 }, () => good[0]!));
    expect(answers).toHaveLength(1001);
    expect(answers.every((a) => !a.allow && codes(a).join() === UNAVAILABLE_REASON)).toBe(true);
    await expect(client.batchCheck(Array.from({ length: 1001 }, () => good[0]!), { throwOnError: true })).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});
