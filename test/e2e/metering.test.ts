import { Metadata, status } from "@grpc/grpc-js";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WatchEventsRequest, type Event } from "../../src/gen/bulkhead/v1/entitlements.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { MINUTE, nextMonthStart, TEST_START, testClock } from "../support/test-time.js";

// EntitlementService end to end: a real server, the real gRPC client, SQLite
// files, and an injected clock for expiry and window boundaries.
const clock = testClock();
let sidecar: TestSidecar;
let nextKey = 0;
const key = () => `key-${++nextKey}`;
const EXPORTS = "exports.csv.monthly";

/** A pro tenant of its own with `used` exports this month, so tests do not share counters. */
function proTenant(id: string, used = 0, planCode = "pro"): string {
  sidecar.seed({
    tenants: [{ id, slug: id.replace(/_/g, "-"), planCode }],
    memberships: [{ tenantId: id, actorId: `usr_${id}`, role: "owner" }],
    usage: [{ tenantId: id, meter: EXPORTS, used }],
  });
  return id;
}

const usedOf = (tenantId: string) =>
  sidecar.entitlements.get({ tenantId }).then((r) => r.limits.find((l) => l.meter === EXPORTS)!);

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
});
afterAll(() => sidecar.close());

describe("GetEntitlements", () => {
  it("reports each entitlement's source and expiry, and each limit with usage and reset", async () => {
    const tenantId = proTenant("ten_report", 12);
    const until = clock.now() + 86_400_000;
    sidecar.seed({
      tenantAddons: [{ tenantId, addonCode: "seats", quantity: 5 }],
      overrides: [
        { tenantId, entitlement: "sso", effect: "grant", reason: "pilot", author: "usr_sales", expiresAt: until },
        { tenantId, entitlement: "analytics.pro", effect: "revoke", reason: "abuse review", author: "usr_trust", expiresAt: null },
      ],
    });
    const report = await sidecar.entitlements.get({ tenantId });
    expect(report.planCode).toBe("pro");
    const byKey = Object.fromEntries(report.entitlements.map((e) => [e.key, e]));
    expect(byKey["exports.csv"]).toMatchObject({ source: "plan", sourceId: "pro", expiresAt: undefined });
    expect(byKey["sso"]).toMatchObject({ source: "override", expiresAt: new Date(until) });
    expect(byKey["analytics.pro"]).toBeUndefined();

    const limits = Object.fromEntries(report.limits.map((l) => [l.meter, l]));
    expect(limits[EXPORTS]).toMatchObject({
      kind: "consumable", soft: 80, hard: 100, used: 12, remaining: 88, reset: "calendar_month",
      resetsAt: new Date(nextMonthStart(TEST_START)), unlimited: false,
    });
    // Seats: pro's 10 plus 5 units of the seats add-on; one owner so far.
    expect(limits["seats"]).toMatchObject({ kind: "seats", hard: 15, used: 1, sources: ["plan:pro", "addon:seatsx5"] });
  });

  it("grants exports.csv to a free tenant until a date, then takes it away by itself", async () => {
    const tenantId = proTenant("ten_free_trial", 0, "free");
    const expiresAt = clock.now() + 3_600_000;
    sidecar.seed({
      overrides: [{ tenantId, entitlement: "exports.csv", effect: "grant", reason: "sales trial", author: "usr_sales", expiresAt }],
    });
    const owner = `usr_${tenantId}`;
    const during = await sidecar.check(checkRequest(tenantId, owner, "reports.export"));
    // The plan gate is lifted; the rollout (pro and enterprise only) still holds.
    expect(codes(during)).toEqual(["feature_disabled"]);
    expect((await sidecar.entitlements.get({ tenantId })).entitlements.find((e) => e.key === "exports.csv")).toMatchObject({
      source: "override",
      expiresAt: new Date(expiresAt),
    });
    clock.set(expiresAt);
    const after = await sidecar.check(checkRequest(tenantId, owner, "reports.export"));
    expect(codes(after)).toEqual(["not_in_plan", "feature_disabled"]);
    expect((await sidecar.entitlements.get({ tenantId })).entitlements.map((e) => e.key)).toEqual(["projects"]);
    clock.set(TEST_START);
  });

  it("answers NOT_FOUND for an unknown tenant", async () => {
    const error = await sidecar.entitlements.get({ tenantId: "ten_nowhere" }).catch((e) => e);
    expect(error.code).toBe(status.NOT_FOUND);
  });
});

describe("Consume", () => {
  it("lets exactly the limit through when many calls race for the last units", async () => {
    const tenantId = proTenant("ten_race", 90);
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: key() })),
    );
    expect(answers.filter((a) => a.allowed)).toHaveLength(10);
    expect(answers.filter((a) => !a.allowed).every((a) => a.reasons[0]?.code === "limit_reached")).toBe(true);
    expect((await usedOf(tenantId)).used).toBe(100);
  });

  it("lets exactly the limit through when two processes and the sidecar race on one database file", async () => {
    const tenantId = proTenant("ten_race2", 0);
    const worker = join(import.meta.dirname, "..", "support", "consume-worker.mjs");
    const run = (prefix: string) =>
      promisify(execFile)(process.execPath, [worker, sidecar.bulkhead.config.dbPath, tenantId, EXPORTS, "80", prefix, String(clock.now())]).then(
        ({ stdout }) => JSON.parse(stdout) as { allowed: number; denied: number },
      );
    const viaGrpc = Promise.all(
      Array.from({ length: 40 }, () => sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: key() })),
    );
    const [a, b, grpc] = await Promise.all([run("proc-a"), run("proc-b"), viaGrpc]);
    const allowed = a.allowed + b.allowed + grpc.filter((r) => r.allowed).length;
    expect(allowed).toBe(100);
    expect(a.allowed + a.denied + b.allowed + b.denied + grpc.length).toBe(200);
    expect((await usedOf(tenantId)).used).toBe(100);
  });

  it("counts a retried call once and returns the original answer", async () => {
    const tenantId = proTenant("ten_retry", 0);
    const request = { tenantId, meter: EXPORTS, amount: 7, idempotencyKey: "order-42" };
    const first = await sidecar.entitlements.consume(request);
    const again = await sidecar.entitlements.consume(request);
    expect(again).toEqual(first);
    expect((await usedOf(tenantId)).used).toBe(7);
  });

  it("refuses the same key with a different payload, and keeps keys per tenant", async () => {
    const tenantId = proTenant("ten_reuse", 0);
    await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: "shared-key" });
    const error = await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 2, idempotencyKey: "shared-key" }).catch((e) => e);
    expect(error.code).toBe(status.ALREADY_EXISTS);
    expect(error.metadata.get("bulkhead-error-code")).toEqual(["IDEMPOTENCY_KEY_REUSED"]);
    // Another tenant using the same key is a different request, not a replay of this one.
    const other = proTenant("ten_reuse_b", 0);
    const answer = await sidecar.entitlements.consume({ tenantId: other, meter: EXPORTS, amount: 2, idempotencyKey: "shared-key" });
    expect(answer.used).toBe(2);
    expect((await usedOf(tenantId)).used).toBe(1);
  });

  it("warns once when the soft limit is crossed, and streams the warning", async () => {
    const tenantId = proTenant("ten_soft", 78);
    const stream = sidecar.entitlementClient.watchEvents(WatchEventsRequest.fromPartial({ tenantId }));
    const received: Event[] = [];
    stream.on("data", (e: Event) => received.push(e));
    stream.on("error", () => {});
    for (let i = 0; i < 5; i++) await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: key() });
    for (let i = 0; i < 40 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    stream.cancel();
    const warnings = sidecar.bulkhead.db
      .prepare("SELECT payload FROM outbox WHERE tenant_id = ? AND kind = 'usage_limit_warning'")
      .all(tenantId);
    expect(warnings).toHaveLength(1);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ kind: "usage_limit_warning", tenantId, payload: { meter: EXPORTS, used: 80, soft: 80, hard: 100 } });
  });

  it("starts a new window at the period boundary", async () => {
    const tenantId = proTenant("ten_window", 0);
    clock.set(nextMonthStart(TEST_START) - MINUTE);
    sidecar.seed({ usage: [{ tenantId, meter: EXPORTS, used: 100 }] });
    const full = await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: key() });
    expect(full.allowed).toBe(false);
    expect(full.reasons[0]?.details).toMatchObject({ meter: EXPORTS, used: "100", limit: "100", resets_at: new Date(nextMonthStart(TEST_START)).toISOString() });
    clock.set(nextMonthStart(TEST_START));
    const fresh = await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: key() });
    expect(fresh).toMatchObject({ allowed: true, used: 1, remaining: 99 });
    clock.set(TEST_START);
  });

  it.each([
    ["meter", { meter: "bitcoins", amount: 1 }],
    ["meter", { meter: "seats", amount: 1 }],
    ["amount", { meter: EXPORTS, amount: 0 }],
    ["amount", { meter: EXPORTS, amount: 5_000_000_000 }],
    ["idempotency_key", { meter: EXPORTS, amount: 1, idempotencyKey: "" }],
    ["tenant_id", { tenantId: "", meter: EXPORTS, amount: 1 }],
  ])("rejects a bad %s with INVALID_ARGUMENT and consumes nothing", async (field, request) => {
    const tenantId = proTenant(`ten_bad_${nextKey++}`, 5);
    const error = await sidecar.entitlements
      .consume({ tenantId, idempotencyKey: key(), ...request })
      .catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual([field]);
    expect((await usedOf(tenantId)).used).toBe(5);
  });

  it("requires a caller token when tokens are configured", async () => {
    const guarded = await startSidecar({ config: { callerTokens: ["t0ken"] } });
    try {
      const request = { tenantId: "ten_acme", meter: EXPORTS, amount: 1, idempotencyKey: "k" };
      expect((await guarded.entitlements.consume(request).catch((e) => e)).code).toBe(status.UNAUTHENTICATED);
      const md = new Metadata();
      md.set("authorization", "Bearer t0ken");
      expect((await guarded.entitlements.consume(request, md)).allowed).toBe(true);
    } finally {
      await guarded.close();
    }
  });
});

describe("Reserve, Commit, Release", () => {
  it("holds units against the limit and returns unused ones on commit", async () => {
    const tenantId = proTenant("ten_reserve", 60);
    const held = await sidecar.entitlements.reserve({ tenantId, meter: EXPORTS, amount: 30, idempotencyKey: key() });
    expect(held).toMatchObject({ allowed: true, reserved: 30, remaining: 10 });
    const squeezed = await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 20, idempotencyKey: key() });
    expect(squeezed.allowed).toBe(false);
    const committed = await sidecar.entitlements.commit({ tenantId, reservationId: held.reservationId, actual: 12 });
    expect(committed).toMatchObject({ used: 72, remaining: 28 });
    // A retried commit gets the same answer and charges nothing more.
    expect(await sidecar.entitlements.commit({ tenantId, reservationId: held.reservationId, actual: 12 })).toEqual(committed);
    expect((await usedOf(tenantId)).used).toBe(72);
  });

  it("returns units on release and refuses to commit a released reservation", async () => {
    const tenantId = proTenant("ten_release", 0);
    const held = await sidecar.entitlements.reserve({ tenantId, meter: EXPORTS, amount: 100, idempotencyKey: key() });
    expect((await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: key() })).allowed).toBe(false);
    expect((await sidecar.entitlements.release({ tenantId, reservationId: held.reservationId })).released).toBe(100);
    expect((await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: key() })).allowed).toBe(true);
    const error = await sidecar.entitlements.commit({ tenantId, reservationId: held.reservationId, actual: 1 }).catch((e) => e);
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.metadata.get("bulkhead-error-code")).toEqual(["RESERVATION_CLOSED"]);
  });

  it("gives the units back when a reservation expires, without any write", async () => {
    const tenantId = proTenant("ten_expiry", 0);
    const held = await sidecar.entitlements.reserve({ tenantId, meter: EXPORTS, amount: 100, ttlSeconds: 60, idempotencyKey: key() });
    const blocked = await sidecar.check(checkRequest(tenantId, `usr_${tenantId}`, "reports.export"));
    expect(codes(blocked)).toEqual(["limit_reached"]);
    clock.advance(60_000);
    expect((await sidecar.check(checkRequest(tenantId, `usr_${tenantId}`, "reports.export"))).allow).toBe(true);
    expect((await usedOf(tenantId)).reserved).toBe(0);
    const late = await sidecar.entitlements.commit({ tenantId, reservationId: held.reservationId, actual: 5 }).catch((e) => e);
    expect(late.details).toContain("expired");
  });

  it("keeps caller keys apart from the keys Commit and Release use (review item 7)", async () => {
    const tenantId = proTenant("ten_key_squat", 0);
    const committed = await sidecar.entitlements.reserve({ tenantId, meter: EXPORTS, amount: 10, idempotencyKey: key() });
    const released = await sidecar.entitlements.reserve({ tenantId, meter: EXPORTS, amount: 10, idempotencyKey: key() });
    // An insider squats the keys the sidecar would use for this reservation's commit and release.
    for (const held of [committed, released]) {
      for (const prefix of ["commit", "release"]) {
        await sidecar.entitlements.consume({ tenantId, meter: EXPORTS, amount: 1, idempotencyKey: `${prefix}:${held.reservationId}` });
      }
    }
    expect(await sidecar.entitlements.commit({ tenantId, reservationId: committed.reservationId, actual: 4 })).toMatchObject({ used: 8 });
    expect((await sidecar.entitlements.release({ tenantId, reservationId: released.reservationId })).released).toBe(10);
    expect((await usedOf(tenantId)).reserved).toBe(0);
  });

  it("never lets another tenant commit or release a reservation", async () => {
    const owner = proTenant("ten_owner", 0);
    const thief = proTenant("ten_thief", 0);
    const held = await sidecar.entitlements.reserve({ tenantId: owner, meter: EXPORTS, amount: 10, idempotencyKey: key() });
    for (const attempt of [
      sidecar.entitlements.commit({ tenantId: thief, reservationId: held.reservationId, actual: 10 }),
      sidecar.entitlements.release({ tenantId: thief, reservationId: held.reservationId }),
    ]) {
      expect((await attempt.catch((e) => e)).code).toBe(status.NOT_FOUND);
    }
    expect((await usedOf(owner)).reserved).toBe(10);
    expect((await usedOf(thief)).used).toBe(0);
  });
});

describe("ReportUsage", () => {
  it("sets count meters and refuses consumable ones", async () => {
    const tenantId = proTenant("ten_count", 0);
    expect((await sidecar.entitlements.report({ tenantId, meter: "projects", value: 42 })).used).toBe(42);
    const error = await sidecar.entitlements.report({ tenantId, meter: EXPORTS, value: 0 }).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("Check with consume", () => {
  it("charges the action's meter when allowed, once per idempotency key", async () => {
    const tenantId = proTenant("ten_check", 10);
    const request = checkRequest(tenantId, `usr_${tenantId}`, "reports.export", tenantId, { consume: 5, idempotencyKey: "export-1" });
    const first = await sidecar.check(request);
    expect(first.allow).toBe(true);
    const retry = await sidecar.check(request);
    expect(retry.decisionId).toBe(first.decisionId);
    expect((await usedOf(tenantId)).used).toBe(15);
  });

  it("answers a retry of the Check that took the last unit with the original allow (review item 4)", async () => {
    const tenantId = proTenant("ten_check_last", 99);
    const request = checkRequest(tenantId, `usr_${tenantId}`, "reports.export", tenantId, { consume: 1, idempotencyKey: key() });
    const first = await sidecar.check(request);
    expect(first.allow).toBe(true);
    const retry = await sidecar.check(request);
    expect(retry).toMatchObject({ allow: true, decisionId: first.decisionId });
    expect((await usedOf(tenantId)).used).toBe(100);
    // A new key is a new request and is denied.
    const next = await sidecar.check({ ...request, idempotencyKey: key() });
    expect(codes(next)).toEqual(["limit_reached"]);
  });

  it("denies a retry when something other than quota changed", async () => {
    const tenantId = proTenant("ten_check_demoted", 99);
    sidecar.seed({ memberships: [{ tenantId, actorId: "usr_demoted", role: "owner" }] });
    const request = checkRequest(tenantId, "usr_demoted", "reports.export", tenantId, { consume: 1, idempotencyKey: key() });
    expect((await sidecar.check(request)).allow).toBe(true);
    sidecar.seed({ memberships: [{ tenantId, actorId: "usr_demoted", role: "viewer" }] });
    const retry = await sidecar.check(request);
    expect(retry.allow).toBe(false);
    expect(codes(retry)).toContain("missing_permission");
    expect((await usedOf(tenantId)).used).toBe(100);
  });

  it("charges nothing when denied for another reason", async () => {
    const tenantId = proTenant("ten_check_deny", 10);
    sidecar.seed({ memberships: [{ tenantId, actorId: "usr_viewer", role: "viewer" }] });
    const denied = await sidecar.check(
      checkRequest(tenantId, "usr_viewer", "reports.export", tenantId, { consume: 5, idempotencyKey: key() }),
    );
    expect(codes(denied)).toEqual(["missing_permission"]);
    const crossTenant = await sidecar.check(
      checkRequest(tenantId, `usr_${tenantId}`, "reports.export", "ten_acme", { consume: 5, idempotencyKey: key() }),
    );
    expect(codes(crossTenant)).toEqual(["wrong_tenant"]);
    expect((await usedOf(tenantId)).used).toBe(10);
  });

  it("is denied with limit_reached, charging nothing, when the amount does not fit", async () => {
    const tenantId = proTenant("ten_check_full", 98);
    const denied = await sidecar.check(
      checkRequest(tenantId, `usr_${tenantId}`, "reports.export", tenantId, { consume: 3, idempotencyKey: key() }),
    );
    expect(codes(denied)).toEqual(["limit_reached"]);
    expect(denied.reasons[0]?.details).toMatchObject({ used: "98", limit: "100", requested: "3" });
    expect((await usedOf(tenantId)).used).toBe(98);
  });

  it("requires an idempotency key when consuming", async () => {
    const error = await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export", "ten_acme", { consume: 1 })).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["idempotency_key"]);
  });

  it("races many Checks for the last units and lets exactly the limit through", async () => {
    const tenantId = proTenant("ten_check_race", 95);
    const answers = await Promise.all(
      Array.from({ length: 30 }, () =>
        sidecar.check(checkRequest(tenantId, `usr_${tenantId}`, "reports.export", tenantId, { consume: 1, idempotencyKey: key() })),
      ),
    );
    expect(answers.filter((a) => a.allow)).toHaveLength(5);
    expect((await usedOf(tenantId)).used).toBe(100);
  });
});

describe("seats", () => {
  it("denies an invite once active members plus pending invites fill the seats", async () => {
    const tenantId = proTenant("ten_seats", 0);
    sidecar.seed({
      limitOverrides: [{ tenantId, meter: "seats", soft: null, hard: 3, reason: "small pilot", author: "usr_sales", expiresAt: null }],
      memberships: [{ tenantId, actorId: "usr_m1", role: "member" }],
    });
    const invite = checkRequest(tenantId, `usr_${tenantId}`, "members.invite", tenantId, { resource: { type: "invitation", tenantId, attributes: { role: "member" } } });
    expect((await sidecar.check(invite)).allow).toBe(true);
    sidecar.seed({ memberships: [{ tenantId, actorId: "usr_m2", role: "member", status: "invited" }] });
    const full = await sidecar.check(invite);
    expect(codes(full)).toEqual(["limit_reached"]);
    expect(full.reasons[0]?.details).toMatchObject({ meter: "seats", used: "3", limit: "3" });
  });
});
