import { status } from "@grpc/grpc-js";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdminCall } from "../support/admin-client.js";
import type { NatsCluster } from "../support/nats-cluster.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import { checkRequest, codes, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { readRevision } from "../../src/store/revision-writer.js";
import { scrape, valueOf } from "../support/prometheus.js";
import { deliver, event, sign, subscriptionObject } from "../support/stripe-events.js";
import { epochSeconds, testClock } from "../support/test-time.js";

// Three real sidecars (each a real gRPC server with its own SQLite file) on
// one real three-node JetStream cluster: the log is the store, every file a
// view of it (ADRs 42-44). The last two describes stop every NATS node and
// then feed the sidecars an entry they cannot apply, so they run last.
const STALENESS_MS = 1_000;
const clock = testClock();
let cluster: NatsCluster;
let sidecars: TestSidecar[] = [];
let admins: AdminCall[] = [];
let closeAll = async () => {};

beforeAll(async () => {
  ({ cluster, sidecars, admins, close: closeAll } = await startReplicatedSidecars({ clock, stream: "BULKHEAD_TEST", stalenessMs: STALENESS_MS }));
}, 120_000);

afterAll(() => closeAll());

const [A, B, C] = [0, 1, 2];
/** The revision the sidecar's file has applied, read from the file (the tracker refuses once stale). */
const revisionOf = (s: TestSidecar) => readRevision(s.bulkhead.db);

describe("three sidecars on one change log", () => {
  it("seeds the demo dataset once per stream: the second and third sidecar joined it", async () => {
    const info = await sidecars[A]!.bulkhead.replication!.catchUp();
    // One seed entry, however many sidecars were started with BULKHEAD_DEMO.
    expect(info).toBe(1);
    for (const s of sidecars) {
      expect(s.bulkhead.stores.directory.membership("ten_globex", "usr_carol")?.role).toBe("admin");
      expect(revisionOf(s)).toBe(1);
    }
  });

  it("a role downgrade written on sidecar A is seen by a Check with min_revision on sidecar C", async () => {
    expect((await sidecars[C]!.check(checkRequest("ten_globex", "usr_carol", "projects.delete"))).allow).toBe(true);
    const write = await admins[A]!<{ storeRevision: number }>("putMembership", {
      tenantId: "ten_globex", membership: { actorId: "usr_carol", role: "viewer" }, reason: "customer_request: role review",
    });
    // The answer carries the global revision: the entry's stream sequence.
    expect(write.storeRevision).toBeGreaterThan(1);
    const after = await sidecars[C]!.check(checkRequest("ten_globex", "usr_carol", "projects.delete", "ten_globex", { minRevision: write.storeRevision }));
    expect(codes(after)).toEqual(["missing_permission"]);
    expect(after.storeRevision).toBeGreaterThanOrEqual(write.storeRevision);
  });

  it("a refused admin write is refused on the sidecar that made it, and every sidecar passes its revision unchanged", async () => {
    const error = await admins[B]!("putMembership", {
      tenantId: "ten_globex", membership: { actorId: "usr_new", role: "no_such_role" }, reason: "customer_request",
    }).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["membership.role"]);
    for (const s of sidecars) expect(s.bulkhead.stores.directory.membership("ten_globex", "usr_new")).toBeUndefined();
  });

  it("a min_revision no sidecar has reached fails with a deadline error, never an answer from older state", async () => {
    const ahead = revisionOf(sidecars[B]!) + 1_000;
    const error = await sidecars[B]!.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: ahead }),
    ).catch((e) => e);
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.details).toMatch(/min_revision|revision/);
  });

  it("300 Consume calls spread over three sidecars race for the last 50 units: exactly 50 allowed, the counter at the limit on every sidecar", async () => {
    const tenantId = "ten_acme";
    const meter = "exports.csv.monthly";
    // The demo has used 12 of 100: take it to 50 left.
    const top = await sidecars[A]!.entitlements.consume({ tenantId, meter, amount: 38, idempotencyKey: "race-topup" });
    expect(top.allowed).toBe(true);
    expect(top.remaining).toBe(50);

    const calls = Array.from({ length: 300 }, (_, i) =>
      sidecars[i % 3]!.entitlements.consume({ tenantId, meter, amount: 1, idempotencyKey: `race-${i}` }).then((answer) => ({ i, answer })),
    );
    const answers = await Promise.all(calls);
    const allowed = answers.filter((a) => a.answer.allowed);
    expect(allowed).toHaveLength(50);
    // Every denial says why, and none consumed anything.
    for (const a of answers.filter((x) => !x.answer.allowed)) expect(a.answer.reasons.map((r) => r.code)).toEqual(["limit_reached"]);
    // Which sidecars win is up to the race (one fast sidecar may take all 50),
    // so only the totals are pinned; asserting that each sidecar won some was
    // a flaky test of scheduling, not of the limit.

    const last = Math.max(...allowed.map((a) => a.answer.storeRevision));
    for (const s of sidecars) {
      const report = await s.entitlements.get({ tenantId, minRevision: last });
      expect(report.limits.find((l) => l.meter === meter)?.used).toBe(100);
    }

    // Only winners were appended: a sidecar appends a Consume only when the
    // last entry on the meter's subject is one it applied, so a loser decides
    // again on newer state, and a denial is answered without an entry.
    const nc = await connect({ servers: cluster.urls() });
    try {
      const info = await (await jetstreamManager(nc)).streams.info("BULKHEAD_TEST", { subjects_filter: "BULKHEAD_TEST.k.>" });
      expect(Object.values(info.state.subjects ?? {})).toEqual([51]);
    } finally {
      await nc.close();
    }

    // A retried key returns its first answer on any sidecar, and takes nothing.
    const first = allowed[0]!;
    const elsewhere = sidecars[(first.i + 1) % 3]!;
    const again = await elsewhere.entitlements.consume({ tenantId, meter, amount: 1, idempotencyKey: `race-${first.i}` });
    expect(again).toEqual(first.answer);
    const report = await elsewhere.entitlements.get({ tenantId, minRevision: last });
    expect(report.limits.find((l) => l.meter === meter)?.used).toBe(100);
  }, 120_000);

  it("reports replication on /metrics: applied sequence, no lag once applied, conflicts retried, catch-up done", async () => {
    const head = await sidecars[A]!.bulkhead.replication!.catchUp();
    let conflicts = 0;
    for (const s of sidecars) {
      await s.entitlements.get({ tenantId: "ten_acme", minRevision: head });
      const scraped = await scrape(s.httpPort);
      expect(scraped.types.get("bulkhead_replication_conflicts_total")).toBe("counter");
      expect(valueOf(scraped, "bulkhead_replication_applied_sequence")).toBe(head);
      expect(valueOf(scraped, "bulkhead_replication_lag_entries")).toBe(0);
      expect(valueOf(scraped, "bulkhead_replication_lag_seconds")).toBe(0);
      expect(valueOf(scraped, "bulkhead_replication_catchup_remaining_entries")).toBe(0);
      expect(valueOf(scraped, "bulkhead_replication_ready")).toBe(1);
      conflicts += valueOf(scraped, "bulkhead_replication_conflicts_total")!;
    }
    // 300 Consumes on one meter from three sidecars at once: some lost a race and decided again.
    expect(conflicts).toBeGreaterThan(0);
  });
});

describe("Stripe webhooks from any sidecar", () => {
  const now = () => epochSeconds(clock.now());
  const streamMessages = async () => {
    const nc = await connect({ servers: cluster.urls() });
    try {
      return (await (await jetstreamManager(nc)).streams.info("BULKHEAD_TEST")).state.messages;
    } finally {
      await nc.close();
    }
  };
  const planOf = (s: TestSidecar, tenantId: string) =>
    s.bulkhead.db.prepare("SELECT plan_code FROM tenants WHERE id = ?").pluck().get(tenantId) as string;
  const deliveriesOf = (s: TestSidecar, id: string) =>
    s.bulkhead.db.prepare("SELECT count(*) FROM billing_events WHERE event_id = ?").pluck().get(id) as number;

  it("the same signed event posted to two sidecars at once has one effect on every sidecar", async () => {
    const subscription = subscriptionObject({ id: "sub_globex_repl", customer: "cus_globex_repl", status: "active", plan: "pro", tenantId: "ten_globex" });
    const payload = event("evt_repl_upgrade", "customer.subscription.created", subscription, now());
    const header = sign(payload, TEST_WEBHOOK_SECRET, now());
    const before = await streamMessages();
    const [a, b] = await Promise.all([deliver(sidecars[A]!.httpPort, payload, header), deliver(sidecars[B]!.httpPort, payload, header)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    // One of them applied it; the other was told it was already there.
    expect([a.body.outcome, b.body.outcome].sort()).toEqual(["applied", "duplicate"]);
    // JetStream stored one entry under the event id; the second append was de-duplicated.
    expect(await streamMessages()).toBe(before + 1);
    const revision = Math.max(Number(a.body.store_revision), Number(b.body.store_revision));
    for (const s of sidecars) {
      await s.entitlements.get({ tenantId: "ten_globex", minRevision: revision });
      expect(planOf(s, "ten_globex")).toBe("pro");
      expect(deliveriesOf(s, "evt_repl_upgrade")).toBe(1);
    }

    // A Stripe retry to a third sidecar later is a duplicate there too, and appends nothing.
    const retry = await deliver(sidecars[C]!.httpPort, payload, header);
    expect(retry.body.outcome).toBe("duplicate");
    expect(await streamMessages()).toBe(before + 1);
  });

  it("an older event for the same subscription delivered to another sidecar is stale everywhere (per-object watermark)", async () => {
    const older = subscriptionObject({ id: "sub_globex_repl", customer: "cus_globex_repl", status: "canceled", plan: "pro", tenantId: "ten_globex" });
    const payload = event("evt_repl_older", "customer.subscription.updated", older, now() - 60);
    const answer = await deliver(sidecars[C]!.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, now()));
    expect(answer.status).toBe(200);
    expect(answer.body.outcome).toBe("stale");
    for (const s of sidecars) {
      await s.entitlements.get({ tenantId: "ten_globex", minRevision: Number(answer.body.store_revision) });
      expect(planOf(s, "ten_globex")).toBe("pro");
    }
  });

  it("a forged signature is refused with 400 and nothing reaches the log", async () => {
    const payload = event("evt_repl_forged", "customer.subscription.deleted", subscriptionObject({ id: "sub_globex_repl", customer: "cus_globex_repl", status: "canceled", plan: null, tenantId: "ten_globex" }), now());
    const before = await streamMessages();
    const answer = await deliver(sidecars[B]!.httpPort, payload, sign(payload, "whsec_attacker", now()));
    expect(answer.status).toBe(400);
    expect(await streamMessages()).toBe(before);
    for (const s of sidecars) expect(deliveriesOf(s, "evt_repl_forged")).toBe(0);
  });
});

describe("Reserve, Commit and Release from any sidecar", () => {
  const tenantId = "ten_initech";
  const meter = "exports.csv.monthly";
  const usageOn = async (s: TestSidecar, minRevision: number) =>
    (await s.entitlements.get({ tenantId, minRevision })).limits.find((l) => l.meter === meter);
  let won: { i: number; answer: Awaited<ReturnType<TestSidecar["entitlements"]["reserve"]>> }[] = [];

  it("60 Reserve calls of 2 units spread over three sidecars race for 100 units: exactly 50 held, under one id each on every sidecar", async () => {
    const calls = Array.from({ length: 60 }, (_, i) =>
      sidecars[i % 3]!.entitlements.reserve({ tenantId, meter, amount: 2, ttlSeconds: 3600, idempotencyKey: `rsv-race-${i}` }).then((answer) => ({ i, answer })),
    );
    const answers = await Promise.all(calls);
    won = answers.filter((a) => a.answer.allowed);
    expect(won).toHaveLength(50);
    for (const a of answers.filter((x) => !x.answer.allowed)) expect(a.answer.reasons.map((r) => r.code)).toEqual(["limit_reached"]);
    expect(new Set(won.map((a) => a.answer.reservationId)).size).toBe(50);
    const last = Math.max(...won.map((a) => a.answer.storeRevision));
    for (const s of sidecars) {
      expect((await usageOn(s, last))?.reserved).toBe(100);
      // The reservation a sidecar holds has the id its maker answered with.
      for (const a of won) expect(s.bulkhead.stores.usage.reservation(tenantId, a.answer.reservationId)?.amount).toBe(2);
    }
    // Only the winners were appended, on the meter's own subject (optimistic concurrency, as for Consume).
    const nc = await connect({ servers: cluster.urls() });
    try {
      const subject = `BULKHEAD_TEST.k.${Buffer.from(`usage/${tenantId}/${meter}`, "utf8").toString("base64url")}`;
      const info = await (await jetstreamManager(nc)).streams.info("BULKHEAD_TEST", { subjects_filter: subject });
      expect(info.state.subjects).toEqual({ [subject]: 50 });
    } finally {
      await nc.close();
    }

    // A retried key on another sidecar returns its first answer: the same reservation, nothing more held.
    const first = won[0]!;
    const again = await sidecars[(first.i + 1) % 3]!.entitlements.reserve({ tenantId, meter, amount: 2, ttlSeconds: 3600, idempotencyKey: `rsv-race-${first.i}` });
    expect(again.reservationId).toBe(first.answer.reservationId);
    expect((await usageOn(sidecars[C]!, last))?.reserved).toBe(100);
  }, 60_000);

  it("a reservation taken on one sidecar is committed on another and released on a third; a retried commit answers as the first", async () => {
    const [taken, freed] = [won[0]!, won[1]!];
    const committedOn = sidecars[(taken.i + 1) % 3]!;
    const commit = await committedOn.entitlements.commit({ tenantId, reservationId: taken.answer.reservationId, actual: 1 });
    expect(commit.used).toBe(1);
    const retry = await sidecars[(taken.i + 2) % 3]!.entitlements.commit({ tenantId, reservationId: taken.answer.reservationId, actual: 1 });
    expect(retry).toEqual(commit);
    const release = await sidecars[(freed.i + 2) % 3]!.entitlements.release({ tenantId, reservationId: freed.answer.reservationId });
    expect(release.released).toBe(2);
    const last = Math.max(commit.storeRevision, release.storeRevision);
    for (const s of sidecars) {
      const usage = await usageOn(s, last);
      expect(usage?.used).toBe(1);
      expect(usage?.reserved).toBe(96);
    }
  });

  it("a commit naming another tenant's reservation is refused on every sidecar and appends nothing", async () => {
    const victim = won[2]!;
    const before = revisionOf(sidecars[B]!);
    const error = await sidecars[B]!.entitlements.commit({ tenantId: "ten_acme", reservationId: victim.answer.reservationId, actual: 2 }).catch((e) => e);
    expect(error.code).toBe(status.NOT_FOUND);
    expect(error.metadata.get("bulkhead-field")).toEqual(["reservation_id"]);
    const over = await sidecars[C]!.entitlements.commit({ tenantId, reservationId: victim.answer.reservationId, actual: 3 }).catch((e) => e);
    expect(over.code).toBe(status.INVALID_ARGUMENT);
    expect(over.metadata.get("bulkhead-field")).toEqual(["actual"]);
    expect(revisionOf(sidecars[B]!)).toBe(before);
    expect(revisionOf(sidecars[C]!)).toBe(before);
    for (const s of sidecars) expect(s.bulkhead.stores.usage.reservation(tenantId, victim.answer.reservationId)?.state).toBe("held");
  });
});

describe("with every NATS node stopped", () => {
  it("refuses writes at once and writes nothing locally; Checks are served, then UNAVAILABLE past the staleness bound, never allow", async () => {
    const sidecar = sidecars[B]!;
    const allowedCheck = checkRequest("ten_acme", "usr_alice", "projects.read");
    expect((await sidecar.check(allowedCheck)).allow).toBe(true);
    const before = revisionOf(sidecar);
    for (let i = 0; i < 3; i++) await cluster.kill(i);

    // The client notices the lost connection shortly after the servers die.
    const lost = performance.now() + 30_000;
    let refused: { code: number; details: string } | undefined;
    while (!refused && performance.now() < lost) {
      const error = await admins[B]!("removeMembership", { tenantId: "ten_acme", actorId: "usr_bob", reason: "offboarding" }).catch((e) => e);
      // Before the client notices, a write times out waiting for the ack: also UNAVAILABLE, never a success.
      expect(error?.code).toBe(status.UNAVAILABLE);
      if (/NATS is unreachable/.test(error.details)) refused = error;
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refused?.details).toMatch(/NATS is unreachable, and nothing was written/);
    const consume = await sidecar.entitlements.consume({ tenantId: "ten_acme", meter: "exports.csv.monthly", amount: 1, idempotencyKey: "offline" }).catch((e) => e);
    expect(consume.code).toBe(status.UNAVAILABLE);
    expect(revisionOf(sidecar)).toBe(before);
    expect(sidecar.bulkhead.stores.directory.membership("ten_acme", "usr_bob")).toBeDefined();

    // Until the bound, local state serves; past it, every Check fails closed.
    const giveUp = performance.now() + 30_000;
    let failed: { code: number; details: string } | undefined;
    while (!failed && performance.now() < giveUp) {
      const answer = await sidecar.check(allowedCheck).catch((e) => e);
      if (answer?.code !== undefined) failed = answer;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(failed?.code).toBe(status.UNAVAILABLE);
    expect(failed?.details).toMatch(/past the 1000 ms staleness bound/);
    // Each sidecar's client notices the loss on its own (up to a few hundred ms
    // apart), so each one's bound runs out at its own time; until then it serves.
    for (const s of sidecars) {
      let error = await s.check(allowedCheck).catch((e) => e);
      while (error?.code === undefined && performance.now() < giveUp) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        error = await s.check(allowedCheck).catch((e) => e);
      }
      expect(error.code).toBe(status.UNAVAILABLE);
    }
  }, 90_000);
});

describe("after NATS comes back", () => {
  it("every sidecar reconnects, resumes from its last applied revision and converges", async () => {
    for (let i = 0; i < 3; i++) await cluster.restart(i);
    // The stream elects a leader again and the clients reconnect: retry the write until it is taken.
    const giveUp = performance.now() + 60_000;
    let write: { storeRevision: number } | undefined;
    while (!write) {
      write = await admins[B]!<{ storeRevision: number }>("removeMembership", { tenantId: "ten_acme", actorId: "usr_bob", reason: "offboarding" })
        .catch((error) => {
          if (performance.now() > giveUp) throw error;
          return new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 200));
        });
    }
    // Each sidecar's client reconnects on its own backoff; until it has, its Checks fail closed (never an old allow):
    // UNAVAILABLE, or a min_revision wait that runs out (DEADLINE_EXCEEDED) while the entry is still on its way.
    for (const s of sidecars) {
      const request = checkRequest("ten_acme", "usr_bob", "projects.read", "ten_acme", { minRevision: write.storeRevision });
      let answer = await s.check(request).catch((e) => e);
      while (answer?.code !== undefined && answer.code !== status.OK && performance.now() < giveUp) {
        expect(answer.allow, "an error is never an allow").toBeUndefined();
        await new Promise((resolve) => setTimeout(resolve, 200));
        answer = await s.check(request).catch((e) => e);
      }
      expect(codes(answer)).toEqual(["not_a_member"]);
    }
    // A write whose acknowledgement timed out during the outage may still have
    // been stored, after the retried one: every sidecar ends at the stream's end.
    const heads = await Promise.all(sidecars.map((s) => s.bulkhead.replication!.catchUp()));
    for (const s of sidecars) expect(revisionOf(s)).toBe(Math.max(...heads));
  }, 90_000);

  it("an entry this build cannot apply stops every sidecar at it: writes refused, Checks fail closed past the bound", async () => {
    const nc = await connect({ servers: cluster.urls() });
    try {
      // A newer build's version of a command this build knows.
      await jetstream(nc).publish("BULKHEAD_TEST.cmd", JSON.stringify({ type: "membership.put", v: 99, at: clock.now(), body: {} }));
    } finally {
      await nc.close();
    }
    const before = revisionOf(sidecars[A]!);
    const giveUp = performance.now() + 30_000;
    let refused: { code: number; details: string } | undefined;
    while (!refused && performance.now() < giveUp) {
      const error = await admins[A]!("putMembership", { tenantId: "ten_acme", membership: { actorId: "usr_bob", role: "viewer" }, reason: "customer_request" })
        .catch((e) => e);
      if (error?.code === status.UNAVAILABLE && /stopped applying/.test(error.details)) refused = error;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(refused?.details).toMatch(/'membership.put' v99: this build applies v1\.\.v1/);
    // Nothing after the entry was applied, the entry itself neither.
    expect(revisionOf(sidecars[A]!)).toBe(before);
    let failed: { code: number; details: string } | undefined;
    while (!failed && performance.now() < giveUp) {
      const answer = await sidecars[C]!.check(checkRequest("ten_acme", "usr_alice", "projects.read")).catch((e) => e);
      if (answer?.code !== undefined) failed = answer;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(failed?.code).toBe(status.UNAVAILABLE);
    expect(failed?.details).toMatch(/stopped applying the change log/);
  }, 60_000);
});
