import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
let closeAll = async () => {};

beforeAll(async () => {
  ({ cluster, sidecars, close: closeAll } = await startReplicatedSidecars({ clock, stream: "BULKHEAD_BATCH" }));
}, 120_000);

afterAll(() => closeAll());

const [A, B, C] = [0, 1, 2];
const tenantId = "ten_acme";
const meter = "exports.csv.monthly";
const revisionOf = (s: TestSidecar) => readRevision(s.bulkhead.db);
const headOf = () => sidecars[A]!.bulkhead.replication!.catchUp();
const usedOn = async (s: TestSidecar, minRevision: number) =>
  (await s.entitlements.get({ tenantId, minRevision })).limits.find((l) => l.meter === meter)?.used;

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
  it("answers each item in order: a plain check, a charge, a cross-tenant and a non-member item denied; exactly one unit taken everywhere", async () => {
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
      ],
    });
    expect(results.map((r) => r.requestId)).toEqual(["plain", "charged", "cross", "claimed"]);
    expect(results.map((r) => r.allow)).toEqual([true, true, false, false]);
    expect(codes(results[2]!)).toEqual(["wrong_tenant"]);
    expect(results[3]!.error).toBeUndefined();
    // The charged item is as of the entry it took: one entry for the whole batch.
    const charged = results[1]!.storeRevision;
    expect(charged).toBe(head + 1);
    expect(await headOf()).toBe(head + 1);
    for (const s of sidecars) expect(await usedOn(s, charged)).toBe(13);
    // The denied items' keys were not taken: globex's own member may use one.
    for (const s of sidecars) expect(s.bulkhead.stores.usage.idempotent("ten_acme", "mix-2", clock.now())).toBeFalsy();
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

  it("15 batches of 10 on three sidecars race for the last 87 units: exactly 87 allowed, the meter at 100 on every sidecar; a retried batch replays on another sidecar", async () => {
    const head = await headOf();
    expect(await usedOn(sidecars[A]!, head)).toBe(13);
    const batches = Array.from({ length: 15 }, (_, b) => Array.from({ length: 10 }, (_, i) => item(`b${b}-i${i}`, { key: `race-${b}-${i}`, minRevision: head })));
    const answers = await Promise.all(batches.map((checks, b) => sidecars[b % 3]!.batchCheck({ checks }).then(({ results }) => ({ b, results }))));
    for (const { b, results } of answers) expect(results.map((r) => r.requestId)).toEqual(batches[b]!.map((c) => c.principal!.requestId));
    const all = answers.flatMap((a) => a.results);
    const allowed = all.filter((r) => r.allow);
    expect(allowed).toHaveLength(87);
    for (const r of all.filter((x) => !x.allow)) expect(codes(r)).toEqual(["limit_reached"]);
    // The answers' revisions work as min_revision on the other sidecars.
    const last = Math.max(...allowed.map((r) => r.storeRevision));
    for (const s of sidecars) expect(await usedOn(s, last)).toBe(100);

    // The same batch, same keys, on another sidecar: its first answers back, nothing taken or appended.
    const first = answers.find((a) => a.results.some((r) => r.allow))!;
    const before = await headOf();
    const again = await sidecars[(first.b + 1) % 3]!.batchCheck({ checks: batches[first.b]!.map((c) => ({ ...c, minRevision: last })) });
    expect(again.results.map((r) => r.allow)).toEqual(first.results.map((r) => r.allow));
    first.results.forEach((r, i) => r.allow && expect(again.results[i]!.decisionId).toBe(r.decisionId));
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
