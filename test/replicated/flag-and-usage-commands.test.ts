import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, type AdminCall } from "../support/admin-client.js";
import type { NatsCluster } from "../support/nats-cluster.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import { checkRequest, codes, type TestSidecar } from "../support/sidecar.js";
import { readRevision } from "../../src/store/revision-writer.js";
import { MINUTE, testClock } from "../support/test-time.js";

// Flag writes, ReportUsage and the usage sweep as commands (ADRs 60-61):
// three real sidecars, each with its own SQLite file, on one real
// three-node JetStream cluster.
const clock = testClock();
let cluster: NatsCluster;
let sidecars: TestSidecar[] = [];
let admins: AdminCall[] = [];
let closeAll = async () => {};

beforeAll(async () => {
  ({ cluster, sidecars, admins, close: closeAll } = await startReplicatedSidecars({ clock, stream: "BULKHEAD_CMDS" }));
}, 120_000);

afterAll(() => closeAll());

const [A, B, C] = [0, 1, 2];
const revisionOf = (s: TestSidecar) => readRevision(s.bulkhead.db);
const exportCheck = (minRevision = 0) => checkRequest("ten_acme", "usr_alice", "reports.export", "ten_acme", { minRevision });
const auditActions = (s: TestSidecar) => s.bulkhead.db.prepare("SELECT action FROM admin_audit WHERE object = 'flag:new_export_pipeline' ORDER BY rowid").pluck().all();

describe("flag writes from any sidecar", () => {
  it("a kill switch thrown on sidecar A denies on B and C after min_revision; lifted on C, A allows again", async () => {
    for (const s of sidecars) expect((await s.check(exportCheck())).allow).toBe(true);
    const killed = await admins[A]!<{ storeRevision: number; changed: boolean }>("setKillSwitch", {
      key: "new_export_pipeline", killed: true, reason: "incident: exports failing",
    });
    expect(killed.changed).toBe(true);
    for (const s of [sidecars[B]!, sidecars[C]!]) {
      const answer = await s.check(exportCheck(killed.storeRevision));
      expect(answer.allow).toBe(false);
      expect(codes(answer)).toEqual(["feature_disabled"]);
    }
    const lifted = await admins[C]!<{ storeRevision: number }>("setKillSwitch", { key: "new_export_pipeline", killed: false, reason: "incident: fixed" });
    expect(lifted.storeRevision).toBeGreaterThan(killed.storeRevision);
    expect((await sidecars[A]!.check(exportCheck(lifted.storeRevision))).allow).toBe(true);
    // Every sidecar applied both entries, audit rows included: one history, not one per sidecar.
    for (const s of sidecars) {
      await s.check(exportCheck(lifted.storeRevision));
      expect(auditActions(s)).toEqual(["flag.kill", "flag.unkill"]);
    }
  });

  it("a flag put on B and deleted on C is there, then gone, on every sidecar", async () => {
    const flagJson = JSON.stringify({
      key: "beta_dashboard", kind: "release", owner: "team-dash", cleanupAt: "2027-03-31",
      rules: [{ rule: "percentage", params: { percentage: 10 } }],
    });
    const put = await admins[B]!<{ storeRevision: number }>("putFlag", { flagJson, reason: "maintenance" });
    for (const s of sidecars) {
      await s.check(exportCheck(put.storeRevision));
      // Stored at the time the command carries, the same on every sidecar.
      expect(s.bulkhead.stores.flags.get("beta_dashboard")).toMatchObject({ owner: "team-dash", createdAt: clock.now(), killed: false });
    }
    const gone = await admins[C]!<{ storeRevision: number }>("deleteFlag", { key: "beta_dashboard", reason: "maintenance" });
    for (const s of sidecars) {
      await s.check(exportCheck(gone.storeRevision));
      expect(s.bulkhead.stores.flags.get("beta_dashboard")).toBeNull();
    }
  });

  it("a kill switch on an unknown flag is NOT_FOUND on the sidecar that made it, and no sidecar changed anything", async () => {
    const before = sidecars.map(revisionOf);
    const error = await admins[B]!("setKillSwitch", { key: "no_such_flag", killed: true, reason: "incident" }).catch((e) => e);
    expect(error.code).toBe(status.NOT_FOUND);
    expect(error.metadata.get("bulkhead-field")).toEqual(["key"]);
    const head = await sidecars[A]!.bulkhead.replication!.catchUp();
    for (const s of sidecars) {
      await s.check(exportCheck(head));
      expect(s.bulkhead.stores.flags.get("no_such_flag")).toBeNull();
    }
    // The refused entry is a position in the log every sidecar passed, nothing more.
    expect(Math.min(...sidecars.map(revisionOf))).toBeGreaterThanOrEqual(Math.max(...before));
  });

  it("a flag write without the capability is refused before anything reaches the log", async () => {
    const before = await sidecars[A]!.bulkhead.replication!.catchUp();
    const error = await admins[A]!("setKillSwitch", { key: "new_export_pipeline", killed: true, reason: "incident" }, adminAuth("not-a-token", "usr_mallory")).catch((e) => e);
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(await sidecars[A]!.bulkhead.replication!.catchUp()).toBe(before);
    for (const s of sidecars) expect(s.bulkhead.stores.flags.get("new_export_pipeline")?.killed).toBe(false);
  });
});

describe("Check with consume from any sidecar", () => {
  const tenantId = "ten_acme";
  const meter = "exports.csv.monthly";
  const consuming = (i: number, minRevision = 0) =>
    checkRequest(tenantId, "usr_alice", "reports.export", tenantId, { consume: 1, idempotencyKey: `chk-race-${i}`, minRevision });
  const usedOn = async (s: TestSidecar, minRevision: number) =>
    (await s.entitlements.get({ tenantId, minRevision })).limits.find((l) => l.meter === meter)?.used;

  it("150 consuming Checks spread over three sidecars race for the last 88 units: exactly 88 allowed, the meter at 100 on every sidecar", async () => {
    const head = await sidecars[A]!.bulkhead.replication!.catchUp();
    // The demo has used 12 of 100.
    expect(await usedOn(sidecars[A]!, head)).toBe(12);
    const answers = await Promise.all(Array.from({ length: 150 }, (_, i) => sidecars[i % 3]!.check(consuming(i, head)).then((answer) => ({ i, answer }))));
    const allowed = answers.filter((a) => a.answer.allow);
    expect(allowed).toHaveLength(88);
    for (const a of answers.filter((x) => !x.answer.allow)) expect(codes(a.answer)).toEqual(["limit_reached"]);
    const last = Math.max(...allowed.map((a) => a.answer.storeRevision));
    for (const s of sidecars) expect(await usedOn(s, last)).toBe(100);

    // A retried key on another sidecar gets its first answer back (the same decision) and takes nothing.
    const first = allowed[0]!;
    const again = await sidecars[(first.i + 1) % 3]!.check(consuming(first.i));
    expect(again.allow).toBe(true);
    expect(again.decisionId).toBe(first.answer.decisionId);
    for (const s of sidecars) expect(await usedOn(s, last)).toBe(100);
  }, 120_000);

  it("a consuming Check for another tenant's resource is denied and appends nothing", async () => {
    const head = await sidecars[A]!.bulkhead.replication!.catchUp();
    const answer = await sidecars[B]!.check(checkRequest(tenantId, "usr_alice", "reports.export", "ten_globex", { consume: 1, idempotencyKey: "chk-cross" }));
    expect(answer.allow).toBe(false);
    expect(await sidecars[A]!.bulkhead.replication!.catchUp()).toBe(head);
  });
  // A consuming BatchCheck is a command too: test/replicated/batch-check-consume.test.ts (ADR 85).
});

describe("ReportUsage from any sidecar", () => {
  const tenantId = "ten_initech";
  // A count meter: the host reports how many projects the tenant has.
  const meter = "projects";
  const usedOn = async (s: TestSidecar, minRevision: number) =>
    (await s.entitlements.get({ tenantId, minRevision })).limits.find((l) => l.meter === meter)?.used;

  it("reports racing on three sidecars end at one value everywhere: the one last in the log", async () => {
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => sidecars[i % 3]!.entitlements.report({ tenantId, meter, value: 10 + i })));
    const revisions = answers.map((a) => Number(a.storeRevision));
    // Each report is its own entry in the log.
    expect(new Set(revisions).size).toBe(30);
    const last = answers[revisions.indexOf(Math.max(...revisions))]!;
    for (const s of sidecars) expect(await usedOn(s, Number(last.storeRevision))).toBe(Number(last.used));
  });

  it("a report on a consumable meter is refused with the field named on the sidecar that got it, and nothing is appended", async () => {
    const head = await sidecars[A]!.bulkhead.replication!.catchUp();
    const error = await sidecars[B]!.entitlements.report({ tenantId, meter: "exports.csv.monthly", value: 3 }).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["meter"]);
    expect(await sidecars[A]!.bulkhead.replication!.catchUp()).toBe(head);
  });
});

describe("the usage sweeper on a cluster", () => {
  it("runs once per period cluster-wide: three sidecars sweeping at once append one entry, and every sidecar expires the same hold", async () => {
    const tenantId = "ten_initech";
    const held = await sidecars[A]!.entitlements.reserve({ tenantId, meter: "exports.csv.monthly", amount: 5, ttlSeconds: 30, idempotencyKey: "sweep-hold" });
    expect(held.allowed).toBe(true);
    const before = await sidecars[A]!.bulkhead.replication!.catchUp();
    for (const s of sidecars) await s.entitlements.get({ tenantId, minRevision: before });
    clock.advance(2 * MINUTE);
    await Promise.all(sidecars.map((s) => s.bulkhead.sweepUsage()));
    const after = await sidecars[A]!.bulkhead.replication!.catchUp();
    // One sweep entry for the period, not one per sidecar.
    expect(after).toBe(before + 1);
    for (const s of sidecars) {
      await s.entitlements.get({ tenantId, minRevision: after });
      expect(s.bulkhead.stores.usage.reservation(tenantId, held.reservationId)?.state).toBe("expired");
    }
    // Again in the same period, with nothing left to sweep: nothing appended.
    await Promise.all(sidecars.map((s) => s.bulkhead.sweepUsage()));
    expect(await sidecars[A]!.bulkhead.replication!.catchUp()).toBe(after);
  });
});
