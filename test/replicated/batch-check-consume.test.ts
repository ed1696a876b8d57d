import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdminCall } from "../support/admin-client.js";
import type { NatsCluster } from "../support/nats-cluster.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import { codes, type DeepPartialRequest, type TestSidecar } from "../support/sidecar.js";
import type { CheckRequest } from "../../src/gen/bulkhead/v1/decision.js";
import { readRevision } from "../../src/store/revision-writer.js";
import { testClock } from "../support/test-time.js";

// A consuming BatchCheck as one `check.charge-batch` entry (ADR 85): three
// real sidecars, each with its own SQLite file, on one real three-node
// JetStream cluster. The last describe stops every NATS node, so it runs last.
const clock = testClock();
let cluster: NatsCluster;
let sidecars: TestSidecar[] = [];
let admins: AdminCall[] = [];
let closeAll = async () => {};

beforeAll(async () => {
  ({ cluster, sidecars, admins, close: closeAll } = await startReplicatedSidecars({ clock, stream: "BULKHEAD_BATCH" }));
}, 120_000);

afterAll(() => closeAll());

const [A, B, C] = [0, 1, 2];
const tenantId = "ten_acme";
const meter = "exports.csv.monthly";
const revisionOf = (s: TestSidecar) => readRevision(s.bulkhead.db);
const headOf = () => sidecars[A]!.bulkhead.replication!.catchUp();
const usedOn = async (s: TestSidecar, minRevision: number, tenant = tenantId) =>
  (await s.entitlements.get({ tenantId: tenant, minRevision })).limits.find((l) => l.meter === meter)?.used;
const tenantRequest = async (admin: AdminCall, id: string) => {
  const t = await admin<Record<string, unknown>>("getTenant", { tenantId: id });
  return { tenantId: id, slug: t.slug, name: t.name, planCode: t.planCode, status: t.status, billingStatus: t.billingStatus, region: t.region, isolationTier: t.isolationTier, tags: t.tags };
};

/** One batch item: `actor` of `claimed` exports a report of `resourceTenant`, consuming `consume`. */
function item(requestId: string, options: { key?: string; consume?: number; actor?: string; claimed?: string; resourceTenant?: string; minRevision?: number } = {}): DeepPartialRequest<CheckRequest> {
  return {
    principal: { tenantId: options.claimed ?? tenantId, actorId: options.actor ?? "usr_alice", requestId },
    action: "reports.export",
    resource: { type: "reports", id: `res_${requestId}`, tenantId: options.resourceTenant ?? tenantId },
    consume: options.consume ?? 1,
    idempotencyKey: options.key ?? "",
    minRevision: options.minRevision ?? 0,
  };
}

describe("a consuming BatchCheck from any sidecar", () => {
  it("answers each item in order: a plain check and a charge allowed; the wrong tenant, membership, role, plan and key denied; one entry, one unit taken everywhere", async () => {
    const head = await headOf();
    expect(await usedOn(sidecars[A]!, head)).toBe(12);
    const { results } = await sidecars[B]!.batchCheck({
      checks: [
        item("plain", { consume: 0 }),
        item("charged", { key: "mix-1" }),
        // Alice of acme asks to consume on globex's resource: wrong_tenant, no charge.
        item("cross", { key: "mix-2", resourceTenant: "ten_globex" }),
        // Alice claims globex, where she is no member: the key is never looked up there.
        item("claimed", { key: "mix-3", claimed: "ten_globex", resourceTenant: "ten_globex" }),
        // Carol is a viewer in acme: the wrong role.
        item("viewer", { key: "mix-4", actor: "usr_carol" }),
        // Carol is globex's admin, but globex's free plan has no exports: the wrong plan.
        item("free", { key: "mix-5", actor: "usr_carol", claimed: "ten_globex", resourceTenant: "ten_globex" }),
        // A well-formed key no sidecar issued: the wrong token.
        { ...item("bad-key", { key: "mix-6" }), principal: { apiKey: `bk_key_${"0".repeat(26)}.${"A".repeat(43)}`, requestId: "bad-key" } },
      ],
    });
    expect(results.map((r) => r.requestId)).toEqual(["plain", "charged", "cross", "claimed", "viewer", "free", "bad-key"]);
    expect(results.map((r) => r.allow)).toEqual([true, true, false, false, false, false, false]);
    expect(codes(results[2]!)).toEqual(["wrong_tenant"]);
    expect(codes(results[4]!)).toEqual(["missing_permission"]);
    expect(codes(results[5]!)).toContain("not_in_plan");
    expect(codes(results[6]!)).toEqual(["api_key_invalid"]);
    for (const r of results) expect(r.error).toBeUndefined();
    // The charged item is as of the entry it took: one entry for the whole batch.
    const charged = results[1]!.storeRevision;
    expect(charged).toBe(head + 1);
    expect(await headOf()).toBe(head + 1);
    for (const s of sidecars) expect(await usedOn(s, charged)).toBe(13);
    // The denied items' keys were not taken: globex's own member may use one.
    for (const s of sidecars) {
      for (const key of ["mix-2", "mix-4", "mix-6"]) expect(s.bulkhead.stores.usage.idempotent(tenantId, key, clock.now())).toBeFalsy();
      expect(s.bulkhead.stores.usage.idempotent("ten_globex", "mix-5", clock.now())).toBeFalsy();
    }
  });

  it("a key reused for another request fails the whole batch, and nothing is appended or charged", async () => {
    const head = await headOf();
    const error = await sidecars[C]!.batchCheck({
      checks: [item("fresh", { key: "reuse-fresh" }), item("reused", { key: "mix-1", consume: 2 })],
    }).catch((e) => e);
    expect(error.code).toBe(status.ALREADY_EXISTS);
    expect(await headOf()).toBe(head);
    for (const s of sidecars) {
      expect(await usedOn(s, head)).toBe(13);
      expect(s.bulkhead.stores.usage.idempotent(tenantId, "reuse-fresh", clock.now())).toBeFalsy();
    }
  });

  it("a batch too big for one log entry is INVALID_ARGUMENT, not UNAVAILABLE, and nothing is appended or charged", async () => {
    const head = await headOf();
    // 100 items of 12 KB attributes: each within its own limit, together over NATS's 1 MB per message.
    const checks = Array.from({ length: 100 }, (_, i) => {
      const check = item(`big-${i}`, { key: `big-${i}` });
      return { ...check, resource: { ...check.resource, attributes: { note: "x".repeat(12_000) } } };
    });
    const error = await sidecars[A]!.batchCheck({ checks }).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/max_payload\); nothing was written/);
    expect(await headOf()).toBe(head);
    for (const s of sidecars) expect(await usedOn(s, head)).toBe(13);
  });

  it("batches on three sidecars race for both meters' last units, one meter (keyed) and two (unkeyed): exactly the limit allowed on each, the same counters everywhere; a retried batch replays on another sidecar", async () => {
    // Globex moves to pro, so its exports meter (100, none used) can be raced for too.
    const upgraded = await admins[A]!<{ storeRevision: number }>("putTenant", { ...(await tenantRequest(admins[A]!, "ten_globex")), planCode: "pro", reason: "customer_request: upgrade" });
    const head = upgraded.storeRevision;
    expect(await usedOn(sidecars[A]!, head)).toBe(13);
    expect(await usedOn(sidecars[A]!, head, "ten_globex")).toBe(0);
    const acmeItem = (b: number, i: number) => item(`b${b}-i${i}`, { key: `race-${b}-${i}`, minRevision: head });
    const globexItem = (b: number, i: number) =>
      item(`b${b}-g${i}`, { key: `race-${b}-g${i}`, actor: "usr_carol", claimed: "ten_globex", resourceTenant: "ten_globex", consume: 10, minRevision: head });
    // 12 batches charge acme only (on its meter's subject); 6 charge acme and globex (no one subject).
    const batches = [
      ...Array.from({ length: 12 }, (_, b) => Array.from({ length: 10 }, (_, i) => acmeItem(b, i))),
      ...Array.from({ length: 6 }, (_, m) => Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? acmeItem(12 + m, i) : globexItem(12 + m, i)))),
    ];
    const answers = await Promise.all(batches.map((checks, b) => sidecars[b % 3]!.batchCheck({ checks }).then(({ results }) => ({ b, results }))));
    for (const { b, results } of answers) expect(results.map((r) => r.requestId)).toEqual(batches[b]!.map((c) => c.principal!.requestId));
    const all = answers.flatMap((a) => a.results);
    const allowedOf = (tenant: string) => all.filter((r, n) => r.allow && batches.flat()[n]!.principal!.tenantId === tenant);
    // 150 acme items of 1 for 87 units; 30 globex items of 10 for 100.
    expect(allowedOf(tenantId)).toHaveLength(87);
    expect(allowedOf("ten_globex")).toHaveLength(10);
    for (const r of all.filter((x) => !x.allow)) expect(codes(r)).toEqual(["limit_reached"]);
    // The answers' revisions work as min_revision on the other sidecars.
    const last = Math.max(...all.filter((r) => r.allow).map((r) => r.storeRevision));
    for (const s of sidecars) {
      expect(await usedOn(s, last)).toBe(100);
      expect(await usedOn(s, last, "ten_globex")).toBe(100);
    }

    // The same batches, same keys, on another sidecar: their first answers back, nothing taken or appended.
    const before = await headOf();
    for (const first of [answers.find((a) => a.b < 12 && a.results.some((r) => r.allow))!, answers.find((a) => a.b >= 12 && a.results.some((r) => r.allow))!]) {
      const again = await sidecars[(first.b + 1) % 3]!.batchCheck({ checks: batches[first.b]!.map((c) => ({ ...c, minRevision: last })) });
      expect(again.results.map((r) => r.allow)).toEqual(first.results.map((r) => r.allow));
      first.results.forEach((r, i) => r.allow && expect(again.results[i]!.decisionId).toBe(r.decisionId));
    }
    expect(await headOf()).toBe(before);
    for (const s of sidecars) expect(await usedOn(s, last)).toBe(100);
  }, 120_000);
});

describe("with every NATS node stopped", () => {
  it("a consuming BatchCheck is UNAVAILABLE and nothing is written, on this sidecar or in the log once NATS is back", async () => {
    const head = await headOf();
    const before = sidecars.map(revisionOf);
    for (let i = 0; i < 3; i++) await cluster.kill(i);
    const sidecar = sidecars[C]!;
    // The client notices the lost connection shortly after the servers die; until then a write times out waiting for its ack.
    const lost = performance.now() + 30_000;
    let refused: { code: number; details: string } | undefined;
    for (let n = 0; !refused && performance.now() < lost; n++) {
      const error = await sidecar.batchCheck({ checks: [item(`offline-${n}`, { key: `offline-${n}` }), item("offline-plain", { consume: 0 })] }).catch((e) => e);
      expect(error?.code).toBe(status.UNAVAILABLE);
      if (/NATS is unreachable/.test(error.details)) refused = error;
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refused?.details).toMatch(/nothing was written/);
    expect(sidecars.map(revisionOf)).toEqual(before);

    for (let i = 0; i < 3; i++) await cluster.restart(i);
    const giveUp = performance.now() + 60_000;
    let after: number | undefined;
    while (after === undefined) {
      after = await headOf().catch((error) => {
        if (performance.now() > giveUp) throw error;
        return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 200));
      });
    }
    expect(after).toBe(head);
    for (const s of sidecars) expect(revisionOf(s)).toBe(head);
  }, 150_000);
});
