import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DecisionCache } from "../../src/decision/decision-cache.js";
import { validateCheck } from "../../src/decision/check-input.js";
import { usageWindow } from "../../src/entitlements/entitlement-resolver.js";
import { openDatabase } from "../../src/store/database.js";
import { RevisionWriter } from "../../src/store/revision-writer.js";
import { createSqliteStores, type Stores } from "../../src/store/stores.js";
import type { WriteScope } from "../../src/store/revision-writer.js";
import { join } from "node:path";
import { buildVariantBundle, editFile, faultyBundle, TAGGED_TENANT } from "../support/policy-builds.js";
import { scrape } from "../support/prometheus.js";
import { checkRequest, codes, startSidecar, type DeepPartialRequest, type TestSidecar } from "../support/sidecar.js";
import type { CheckRequest } from "../../src/gen/bulkhead/v1/decision.js";
import { testClock } from "../support/test-time.js";

// Attacks on the decision cache (issue 19, ADR 68) through a real sidecar:
// gRPC, the compiled Wasm and a SQLite file. Each attack first proves the
// allow is served from the cache (a hit on /metrics), then changes who asks
// or what the store says, and expects the deny a fresh evaluation gives.
// The property test (decision-cache.property.test.ts) covers random streams.
const clock = testClock();

/** bulkhead_decision_cache_lookups_total by result, from one scrape of /metrics. */
async function lookups(sidecar: TestSidecar): Promise<{ hit: number; miss: number }> {
  const { samples, types } = await scrape(sidecar.httpPort);
  expect(types.get("bulkhead_decision_cache_lookups_total")).toBe("counter");
  const value = (result: string) => samples.find((s) => s.name === "bulkhead_decision_cache_lookups_total" && s.labels.result === result)?.value;
  return { hit: value("hit")!, miss: value("miss")! };
}

/** Asks twice and proves the second allow came from the cache. */
async function warmAllow(sidecar: TestSidecar, request: DeepPartialRequest<CheckRequest>): Promise<void> {
  expect((await sidecar.check(request)).allow).toBe(true);
  const before = await lookups(sidecar);
  expect((await sidecar.check(request)).allow).toBe(true);
  expect(await lookups(sidecar)).toEqual({ hit: before.hit + 1, miss: before.miss });
}

/** A write through a second connection, as another process sharing the file makes it. */
function writeElsewhere(sidecar: TestSidecar, work: (tx: WriteScope, stores: Stores) => void): number {
  const other = openDatabase(sidecar.bulkhead.config.dbPath);
  try {
    return new RevisionWriter(other, clock).write((tx) => work(tx, createSqliteStores(other))).revision;
  } finally {
    other.close();
  }
}

describe("decision cache attacks", () => {
  let sidecar: TestSidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({ runtime: { clock } });
  });
  afterAll(() => sidecar.close());

  it("never returns a cached allow of tenant A's member for the same actor id in tenant B", async () => {
    // usr_carol is admin in globex and viewer in acme.
    await warmAllow(sidecar, checkRequest("ten_globex", "usr_carol", "projects.create"));
    expect(codes(await sidecar.check(checkRequest("ten_acme", "usr_carol", "projects.create")))).toEqual(["missing_permission"]);
    // usr_alice owns acme and is nobody in globex, by id or by slug.
    await warmAllow(sidecar, checkRequest("ten_acme", "usr_alice", "projects.delete"));
    expect(codes(await sidecar.check(checkRequest("ten_globex", "usr_alice", "projects.delete")))).toEqual(["not_a_member"]);
    const bySlug = { ...checkRequest("ten_globex", "usr_alice", "projects.delete"), principal: { tenantSlug: "globex", actorId: "usr_alice" } };
    // By slug the policy cannot match the resource's tenant id to a tenant it does not know the principal in.
    expect(codes(await sidecar.check(bySlug))).toEqual(["wrong_tenant"]);
    // Nor for the same member asking about another tenant's resource.
    expect(codes(await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.delete", "ten_globex")))).toEqual(["wrong_tenant"]);
  });

  it("never returns a cached allow to another role, nor after the member's role changes", async () => {
    await warmAllow(sidecar, checkRequest("ten_acme", "usr_alice", "projects.delete"));
    expect(codes(await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.delete")))).toEqual(["missing_permission"]);
    // A user id presented as a service account is nobody, though the user's allow is cached.
    const asService = { ...checkRequest("ten_acme", "usr_alice", "projects.delete"), principal: { tenantId: "ten_acme", actorId: "usr_alice", actorType: "service_account" } };
    expect(codes(await sidecar.check(asService))).toEqual(["not_a_member"]);

    await warmAllow(sidecar, checkRequest("ten_globex", "usr_carol", "projects.delete"));
    sidecar.seed({ memberships: [{ tenantId: "ten_globex", actorId: "usr_carol", role: "viewer" }] });
    expect(codes(await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.delete")))).toEqual(["missing_permission"]);
    sidecar.seed({ memberships: [{ tenantId: "ten_globex", actorId: "usr_carol", role: "admin" }] });
  });

  it("denies after a kill switch, thrown on another connection, without waiting for anything", async () => {
    await warmAllow(sidecar, checkRequest("ten_acme", "usr_alice", "reports.export"));
    writeElsewhere(sidecar, (tx, stores) => stores.flags.setKilled(tx, "new_export_pipeline", true));
    expect(codes(await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export")))).toEqual(["feature_disabled"]);
    writeElsewhere(sidecar, (tx, stores) => stores.flags.setKilled(tx, "new_export_pipeline", false));
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"))).allow).toBe(true);
  });

  it("denies after a billing downgrade: a plan without the entitlement, then a read-only billing status", async () => {
    await warmAllow(sidecar, checkRequest("ten_acme", "usr_alice", "analytics.view"));
    sidecar.seed({ tenants: [{ id: "ten_acme", slug: "acme", name: "Acme", planCode: "free", tags: ["beta"] }] });
    const downgraded = await sidecar.check(checkRequest("ten_acme", "usr_alice", "analytics.view"));
    expect(downgraded.reasons[0]).toMatchObject({ code: "not_in_plan", details: { plan: "free" } });

    sidecar.seed({ tenants: [{ id: "ten_acme", slug: "acme", name: "Acme", planCode: "pro", tags: ["beta"] }] });
    await warmAllow(sidecar, checkRequest("ten_acme", "usr_alice", "projects.delete"));
    sidecar.seed({ tenants: [{ id: "ten_acme", slug: "acme", name: "Acme", planCode: "pro", tags: ["beta"], billingStatus: "unpaid" }] });
    expect(codes(await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.delete")))).toEqual(["billing_read_only"]);
    sidecar.seed({ tenants: [{ id: "ten_acme", slug: "acme", name: "Acme", planCode: "pro", tags: ["beta"], billingStatus: "active" }] });
  });

  it("answers a min_revision its cached context predates from the newer state", async () => {
    await warmAllow(sidecar, checkRequest("ten_acme", "usr_bob", "projects.read"));
    const revision = writeElsewhere(sidecar, (tx, stores) => stores.directory.removeMembership(tx, "ten_acme", "usr_bob"));
    const after = await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.read", "ten_acme", { minRevision: revision }));
    expect(codes(after)).toEqual(["not_a_member"]);
    expect(after.storeRevision).toBeGreaterThanOrEqual(revision);
    sidecar.seed({ memberships: [{ tenantId: "ten_acme", actorId: "usr_bob", role: "viewer" }] });
  });

  it("counts a first ask as a miss and its repeat as a hit on /metrics, and reports the bytes it holds", async () => {
    const request = checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { resource: { type: "project", id: "prj_metrics", tenantId: "ten_acme" } });
    const before = await lookups(sidecar);
    await sidecar.check(request);
    expect(await lookups(sidecar)).toEqual({ hit: before.hit, miss: before.miss + 1 });
    await sidecar.check(request);
    await sidecar.check(request);
    expect(await lookups(sidecar)).toEqual({ hit: before.hit + 2, miss: before.miss + 1 });
    const bytes = (await scrape(sidecar.httpPort)).samples.find((s) => s.name === "bulkhead_decision_cache_bytes");
    expect(bytes?.value).toBeGreaterThan(0);
  });

  it("gives every hit its own decision id, request id and decision-log record", async () => {
    const ask = (requestId: string) => sidecar.check({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId } });
    await ask("req_hit_0");
    const before = await lookups(sidecar);
    const [a, b] = [await ask("req_hit_1"), await ask("req_hit_2")];
    expect((await lookups(sidecar)).hit).toBe(before.hit + 2);
    expect([a.requestId, b.requestId]).toEqual(["req_hit_1", "req_hit_2"]);
    expect(a.decisionId).not.toBe(b.decisionId);
    sidecar.bulkhead.decisionLog.flush();
    const logged = sidecar.bulkhead.db.prepare("SELECT request_id FROM decision_log WHERE request_id LIKE 'req_hit_%' ORDER BY request_id").pluck().all();
    expect(logged).toEqual(["req_hit_0", "req_hit_1", "req_hit_2"]);
  });

  it("never caches a Check with consume: each is evaluated and charged, and the last unit is refused", async () => {
    // One export left of the pro plan's 100 this month.
    const meter = sidecar.bulkhead.stores.entitlements.meter("exports.csv.monthly")!;
    sidecar.bulkhead.writer.write((tx) => sidecar.bulkhead.stores.usage.set(tx, "ten_acme", meter.name, usageWindow(meter.reset, tx.now).start, 99));
    const consume = (key: string) => sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export", "ten_acme", { consume: 1, idempotencyKey: key }));
    const before = await lookups(sidecar);
    expect((await consume("exp_1")).allow).toBe(true);
    expect(codes(await consume("exp_2"))).toEqual(["limit_reached"]);
    expect(await lookups(sidecar)).toEqual(before); // no lookup at all: consume never reaches the cache
  });
});

describe("decision cache and failures", () => {
  let trapping: TestSidecar;
  let slow: TestSidecar;
  beforeAll(async () => {
    // Faults only for the tagged tenant (acme), so the bundles pass their smoke cases.
    trapping = await startSidecar({ policyDir: faultyBundle("trap", TAGGED_TENANT), runtime: { clock } });
    slow = await startSidecar({ policyDir: faultyBundle("slow", 'input.action == "reports.export"', 40_000), config: { policyWorkers: 1, policyBudgetMs: 250 }, runtime: { clock } });
  }, 120_000);
  afterAll(async () => {
    await trapping?.close();
    await slow?.close();
  });

  it("never caches an evaluation error: every ask evaluates again and fails closed", async () => {
    const before = await lookups(trapping);
    for (let i = 0; i < 3; i++) {
      const error = await trapping.check(checkRequest("ten_acme", "usr_alice", "projects.read")).catch((e) => e);
      expect(error.metadata.get("bulkhead-error-code")).toEqual(["POLICY_EVALUATION_FAILED"]);
    }
    expect(await lookups(trapping)).toEqual({ hit: before.hit, miss: before.miss + 3 });
  });

  it("never caches a policy_timeout deny: the next ask evaluates again", async () => {
    const before = await lookups(slow);
    for (let i = 0; i < 2; i++) expect(codes(await slow.check(checkRequest("ten_acme", "usr_alice", "reports.export")))).toEqual(["policy_timeout"]);
    expect(await lookups(slow)).toEqual({ hit: before.hit, miss: before.miss + 2 });
    // A fast action on the same sidecar is cached as usual.
    await warmAllow(slow, checkRequest("ten_acme", "usr_alice", "projects.read"));
  });
});

describe("decision cache turned off", () => {
  it("with BULKHEAD_DECISION_CACHE_MB=0 answers the same and exports no decision-cache series", async () => {
    const off = await startSidecar({ config: { decisionCacheMb: 0 }, runtime: { clock } });
    try {
      for (let i = 0; i < 2; i++) expect((await off.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);
      expect(codes(await off.check(checkRequest("ten_acme", "usr_bob", "projects.delete")))).toEqual(["missing_permission"]);
      const { samples } = await scrape(off.httpPort);
      expect(samples.filter((s) => s.name.startsWith("bulkhead_decision_cache_"))).toEqual([]);
      expect(samples.some((s) => s.name === "bulkhead_context_cache_bytes")).toBe(true);
    } finally {
      await off.close();
    }
  });
});

describe("decision cache key", () => {
  let sidecar: TestSidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({ runtime: { clock } });
  });
  afterAll(() => sidecar.close());

  // In the Decider these are backed twice over: the context cache keys on the
  // policy revision and the tenant too, so neither a swap nor another tenant
  // can bring back the same context object. The key must not rely on that.
  it("separates policy revisions and tenant spellings even for one context object", () => {
    const cache = new DecisionCache({ clock, maxBytes: 1 << 20 });
    const input = validateCheck(checkRequest("ten_acme", "usr_alice", "projects.read") as never);
    const resolution = sidecar.bulkhead.resolver.resolve(input.principal);
    const policy = sidecar.bulkhead.policies.policy;
    const key = cache.keyOf(input, resolution, policy)!;
    expect(cache.keyOf(input, resolution, { revision: "0000000000000000", readsRequestId: false })).not.toBe(key);
    const otherTenant = { ...input, principal: { ...input.principal, tenantId: "ten_globex" } };
    expect(cache.keyOf(otherTenant, resolution, policy)).not.toBe(key);
    // The same request and object: the same key, or nothing would ever hit.
    expect(cache.keyOf({ ...input, principal: { ...input.principal, requestId: "req_other" } }, resolution, policy)).toBe(key);
  });

  it("keys on the request id only for a bundle that reads it", async () => {
    expect(sidecar.bulkhead.policies.policy.readsRequestId).toBe(false); // the shipped bundle: unique request ids still hit
    const readsRequestId = buildVariantBundle((src) =>
      editFile(
        join(src, "bulkhead", "checks.rego"),
        'violations contains reason(\n\t"missing_permission",',
        'violations contains reason("missing_permission", "request blocked", {}) if {\n\tstartswith(input.context.request_id, "req_block")\n}\n\nviolations contains reason(\n\t"missing_permission",',
      ),
    );
    const reader = await startSidecar({ policyDir: readsRequestId, runtime: { clock } });
    try {
      expect(reader.bulkhead.policies.policy.readsRequestId).toBe(true);
      const ask = (requestId: string) => reader.check({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId } });
      expect((await ask("req_ok_1")).allow).toBe(true);
      expect(codes(await ask("req_block_1"))).toEqual(["missing_permission"]);
      expect((await ask("req_ok_1")).allow).toBe(true); // the same request id again: a hit
      expect((await lookups(reader)).hit).toBe(1);
    } finally {
      await reader.close();
    }
  }, 60_000);

  it("keys a consuming Check and a non-member named by slug on nothing", () => {
    const cache = new DecisionCache({ clock, maxBytes: 1 << 20 });
    const policy = sidecar.bulkhead.policies.policy;
    const consuming = validateCheck({ ...checkRequest("ten_acme", "usr_alice", "reports.export"), consume: 1, idempotencyKey: "k1" } as never);
    expect(cache.keyOf(consuming, sidecar.bulkhead.resolver.resolve(consuming.principal), policy)).toBeUndefined();
    const bySlug = validateCheck({ ...checkRequest("ten_globex", "usr_alice", "projects.read"), principal: { tenantSlug: "globex", actorId: "usr_alice" } } as never);
    expect(cache.keyOf(bySlug, sidecar.bulkhead.resolver.resolve(bySlug.principal), policy)).toBeUndefined();
  });
});
