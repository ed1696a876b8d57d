import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { HOUR, MINUTE, nextMonthStart, TEST_START, testClock } from "../support/test-time.js";

// Attacks found by an adversarial review of the decision and metering paths;
// each test failed (or would have) before its fix.
const clock = testClock();
const EXPORTS = "exports.csv.monthly";
let sidecar: TestSidecar;
let n = 0;

function tenant(id: string, used = 0): string {
  sidecar.seed({
    tenants: [{ id, slug: id.replace(/_/g, "-"), planCode: "pro" }],
    memberships: [{ tenantId: id, actorId: `usr_${id}`, role: "owner" }],
    usage: [{ tenantId: id, meter: EXPORTS, used }],
  });
  return id;
}
const used = async (tenantId: string) =>
  (await sidecar.entitlements.get({ tenantId })).limits.find((l) => l.meter === EXPORTS)!.used;
const exportCheck = (tenantId: string, actorId: string, key: string, consume = 1) =>
  checkRequest(tenantId, actorId, "reports.export", tenantId, { consume, idempotencyKey: key });

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
});
afterAll(() => sidecar.close());

describe("idempotent Check with consume", () => {
  it("does not replay an allow to an actor who has since lost access", async () => {
    const t = tenant("ten_replay", 10);
    const request = exportCheck(t, `usr_${t}`, "export-1");
    expect((await sidecar.check(request)).allow).toBe(true);
    sidecar.seed({ memberships: [{ tenantId: t, actorId: `usr_${t}`, role: "viewer" }] });
    const retry = await sidecar.check(request);
    expect(retry.allow).toBe(false);
    expect(codes(retry)).toEqual(["missing_permission"]);
    expect(await used(t)).toBe(11);
  });

  it("charges once when the same key arrives by tenant id and by slug", async () => {
    const t = tenant("ten_spelling", 10);
    const byId = exportCheck(t, `usr_${t}`, "k-spell");
    const bySlug = { ...byId, principal: { tenantSlug: "ten-spelling", actorId: `usr_${t}` } };
    const first = await sidecar.check(byId);
    const second = await sidecar.check(bySlug);
    expect(second.decisionId).toBe(first.decisionId);
    expect(await used(t)).toBe(11);
  });

  it("gives a non-member the same plain deny whether or not the tenant used the key", async () => {
    const t = tenant("ten_probe", 0);
    await sidecar.check(exportCheck(t, `usr_${t}`, "export-42"));
    const usedKey = await sidecar.check(exportCheck(t, "usr_dave", "export-42")).catch((e) => e);
    const freshKey = await sidecar.check(exportCheck(t, "usr_dave", "export-43")).catch((e) => e);
    expect(codes(usedKey)).toEqual(["not_a_member"]);
    expect(codes(freshKey)).toEqual(["not_a_member"]);
  });

  it("rolls back every charge of a batch when one item fails", async () => {
    const t = tenant("ten_batch", 10);
    await sidecar.check(exportCheck(t, `usr_${t}`, "reused", 1));
    const error = await sidecar
      .batchCheck({ checks: [exportCheck(t, `usr_${t}`, "b-1", 10), exportCheck(t, `usr_${t}`, "reused", 2)] })
      .catch((e) => e);
    expect(error.code).toBe(status.ALREADY_EXISTS);
    expect(await used(t)).toBe(11);
  });
});

describe("ResolveContext", () => {
  it.each([
    ["a suspended member", { status: "suspended" as const }, "active" as const],
    ["an invited member", { status: "invited" as const }, "active" as const],
    ["a member of a suspended tenant", {}, "suspended" as const],
  ])("answers NOT_FOUND for %s", async (_what, membership, tenantStatus) => {
    const id = `ten_ctx_${n++}`;
    sidecar.seed({
      tenants: [{ id, slug: id.replace(/_/g, "-"), planCode: "pro", status: tenantStatus }],
      memberships: [{ tenantId: id, actorId: "usr_x", role: "admin", ...membership }],
    });
    const error = await sidecar.resolveContext({ principal: { tenantId: id, actorId: "usr_x" } }).catch((e) => e);
    expect(error.code).toBe(status.NOT_FOUND);
    expect(error.details).toBe("no membership for this principal");
  });

  it("tells an invited member nothing about the tenant's plan or billing", async () => {
    const response = await sidecar.check({
      ...checkRequest("ten_initech", "usr_newbie", "projects.create"),
    });
    expect(codes(response)).toEqual(["not_a_member"]);
    sidecar.seed({ memberships: [{ tenantId: "ten_initech", actorId: "usr_newbie", role: "admin", status: "invited" }] });
    expect(codes(await sidecar.check(checkRequest("ten_initech", "usr_newbie", "projects.create")))).toEqual(["membership_inactive"]);
  });
});

describe("metering limits", () => {
  it("refuses to commit more than was reserved", async () => {
    const t = tenant("ten_capture", 0);
    const held = await sidecar.entitlements.reserve({ tenantId: t, meter: EXPORTS, amount: 1, idempotencyKey: "r1" });
    const error = await sidecar.entitlements.commit({ tenantId: t, reservationId: held.reservationId, actual: 1_000_000_000 }).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["actual"]);
    expect(await used(t)).toBe(0);
  });

  it("charges a commit to the window the reservation was made in", async () => {
    const t = tenant("ten_rollover", 0);
    clock.set(nextMonthStart(TEST_START) - HOUR);
    const held = await sidecar.entitlements.reserve({ tenantId: t, meter: EXPORTS, amount: 50, ttlSeconds: 7200, idempotencyKey: "r2" });
    clock.set(nextMonthStart(TEST_START) + 30 * MINUTE);
    await sidecar.entitlements.commit({ tenantId: t, reservationId: held.reservationId, actual: 50 });
    expect(await used(t)).toBe(0); // December starts clean
    clock.set(TEST_START);
    expect(await used(t)).toBe(50); // November carries it
  });

  it("denies consuming a meter the tenant's plan does not include", async () => {
    const answer = await sidecar.entitlements.consume({ tenantId: "ten_globex", meter: EXPORTS, amount: 1_000_000_000, idempotencyKey: "g1" });
    expect(answer.allowed).toBe(false);
    expect(answer.reasons[0]?.code).toBe("not_in_plan");
    const reserve = await sidecar.entitlements.reserve({ tenantId: "ten_globex", meter: EXPORTS, amount: 1, idempotencyKey: "g2" });
    expect(reserve.allowed).toBe(false);
  });
});
