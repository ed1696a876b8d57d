import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRequest, codes, startSidecar, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliver, event, fixture, sign, subscriptionObject, type SubscriptionSpec } from "../support/stripe-events.js";
import { TEST_START, testClock } from "../support/test-time.js";

// Stripe webhooks end to end: real-shaped objects from Stripe's fixtures,
// signed as Stripe signs, delivered over HTTP to the running sidecar, and
// checked through the next gRPC Check.
const START = TEST_START;
const clock = testClock();
const now = () => Math.floor(clock.now() / 1000);
let sidecar: TestSidecar;
let seq = 0;

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { stripeWebhookSecrets: [TEST_WEBHOOK_SECRET, "whsec_test_next"] } });
});
afterAll(() => sidecar.close());

/** A free tenant with an owner, mapped to its own Stripe customer. */
function customerTenant(name: string): { tenantId: string; customer: string; owner: string } {
  const tenantId = `ten_${name}`;
  sidecar.seed({
    tenants: [{ id: tenantId, slug: name.replace(/_/g, "-"), planCode: "free" }],
    memberships: [{ tenantId, actorId: `usr_${name}`, role: "owner" }],
    billingCustomers: [{ customerId: `cus_${name}`, tenantId }],
  });
  return { tenantId, customer: `cus_${name}`, owner: `usr_${name}` };
}

async function send(type: string, object: Record<string, unknown>, created = now(), id = `evt_${++seq}`) {
  const payload = event(id, type, object, created);
  return deliver(sidecar.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, now()));
}

const subscription = (spec: SubscriptionSpec) => subscriptionObject(spec);
const tenantRow = (tenantId: string) =>
  sidecar.bulkhead.db.prepare("SELECT plan_code, billing_status FROM tenants WHERE id = ?").get(tenantId) as { plan_code: string; billing_status: string };
const eventCount = () => sidecar.bulkhead.db.prepare("SELECT count(*) FROM billing_events").pluck().get() as number;

describe("signature", () => {
  const payload = () => event(`evt_sig_${++seq}`, "customer.updated", fixture("customer", { id: "cus_sig" }), now());

  it("accepts a payload signed with any configured secret (rotation)", async () => {
    const p = payload();
    expect((await deliver(sidecar.httpPort, p, sign(p, "whsec_test_next", now()))).status).toBe(200);
  });

  it.each([
    ["a tampered body", (p: string) => ({ body: p.replace("customer.updated", "customer.created"), header: sign(p, TEST_WEBHOOK_SECRET, now()) })],
    ["a wrong secret", (p: string) => ({ body: p, header: sign(p, "whsec_attacker", now()) })],
    ["a stale timestamp", (p: string) => ({ body: p, header: sign(p, TEST_WEBHOOK_SECRET, now() - 301) })],
    ["no header", (p: string) => ({ body: p, header: null })],
  ])("refuses %s with 400 and stores nothing", async (_what, make) => {
    const before = eventCount();
    const { body, header } = make(payload());
    const response = await deliver(sidecar.httpPort, body, header);
    expect(response.status).toBe(400);
    expect(eventCount()).toBe(before);
  });
});

describe("delivery", () => {
  it("applies the same event delivered 20 times exactly once", async () => {
    const t = customerTenant("dup");
    const payload = event("evt_dup_1", "customer.subscription.created", subscription({ id: "sub_dup", customer: t.customer, status: "active", plan: "pro" }), now());
    const header = sign(payload, TEST_WEBHOOK_SECRET, now());
    const revisionBefore = sidecar.bulkhead.tracker.sync();
    const outcomes = [];
    for (let i = 0; i < 20; i++) outcomes.push((await deliver(sidecar.httpPort, payload, header)).body.outcome);
    expect(outcomes[0]).toBe("applied");
    expect(outcomes.slice(1).every((o) => o === "duplicate")).toBe(true);
    expect(sidecar.bulkhead.tracker.sync()).toBe(revisionBefore + 1);
    expect(tenantRow(t.tenantId).plan_code).toBe("pro");
  });

  it("stores and reports an event for an unknown customer without applying it to any tenant", async () => {
    const response = await send("customer.subscription.created", subscription({ id: "sub_orphan", customer: "cus_nobody", status: "active", plan: "enterprise" }));
    expect(response.status).toBe(200);
    expect(response.body.outcome).toBe("unmapped");
    expect(sidecar.bulkhead.db.prepare("SELECT count(*) FROM subscriptions WHERE id = 'sub_orphan'").pluck().get()).toBe(0);
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/bulkhead_billing_events_total\{outcome="unmapped",type="customer\.subscription\.created"\} [1-9]/);
  });

  it("answers 200 to event types it does not handle, and counts them", async () => {
    const response = await send("charge.refunded", fixture("charge", {}));
    expect(response).toMatchObject({ status: 200, body: { outcome: "unhandled" } });
  });

  it("never lets a metadata.tenant_id of an unknown tenant land anywhere", async () => {
    const response = await send("customer.subscription.created", subscription({ id: "sub_forged", customer: "cus_forged", status: "active", plan: "enterprise", tenantId: "ten_does_not_exist" }));
    expect(response.body.outcome).toBe("unmapped");
  });
});

describe("order safety", () => {
  const LIFECYCLE = ["trialing", "active", "past_due", "unpaid", "canceled"] as const;

  /** Deterministic pseudo-random permutation with duplicates, from a seed. */
  function shuffled(seed: number): number[] {
    let x = seed;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const order = [0, 1, 2, 3, 4, ...Array.from({ length: 3 }, () => Math.floor(rand() * 5))];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  }

  async function runLifecycle(name: string, order: number[]) {
    const t = customerTenant(name);
    const base = now() - 1000;
    const payloads = LIFECYCLE.map((status, i) =>
      event(`evt_${name}_${i}`, status === "canceled" ? "customer.subscription.deleted" : "customer.subscription.updated",
        subscription({ id: `sub_${name}`, customer: t.customer, status, plan: "pro" }), base + i * 10),
    );
    for (const i of order) await deliver(sidecar.httpPort, payloads[i]!, sign(payloads[i]!, TEST_WEBHOOK_SECRET, now()));
    const sub = sidecar.bulkhead.db.prepare("SELECT status, plan_code, status_since FROM subscriptions WHERE id = ?").get(`sub_${name}`);
    return { tenant: tenantRow(t.tenantId), sub };
  }

  it("ends in the in-order state for 60 permutations of trial -> active -> past_due -> unpaid -> canceled with duplicates", async () => {
    const inOrder = await runLifecycle("order_ref", [0, 1, 2, 3, 4]);
    expect(inOrder.tenant).toEqual({ plan_code: "free", billing_status: "canceled" });
    for (let seed = 1; seed <= 60; seed++) {
      const result = await runLifecycle(`order_${seed}`, shuffled(seed));
      expect(result, `permutation ${shuffled(seed).join(",")}`).toEqual(inOrder);
    }
  });

  it("never raises access from an older event arriving late", async () => {
    const t = customerTenant("late");
    await send("customer.subscription.updated", subscription({ id: "sub_late", customer: t.customer, status: "unpaid", plan: "pro" }), now());
    const late = await send("customer.subscription.updated", subscription({ id: "sub_late", customer: t.customer, status: "active", plan: "enterprise" }), now() - 60);
    expect(late.body.outcome).toBe("stale");
    expect(tenantRow(t.tenantId)).toEqual({ plan_code: "pro", billing_status: "unpaid" });
  });
});

describe("entitlements follow billing on the next Check", () => {
  it("enables exports.csv after an upgrade from free to pro, and removes it on downgrade", async () => {
    const t = customerTenant("upgrade");
    const exportCheck = () => sidecar.check(checkRequest(t.tenantId, t.owner, "reports.export"));
    expect(codes(await exportCheck())).toContain("not_in_plan");
    await send("customer.subscription.created", subscription({ id: "sub_up", customer: t.customer, status: "active", plan: "pro" }));
    expect((await exportCheck()).allow).toBe(true);
    await send("customer.subscription.updated", subscription({ id: "sub_up", customer: t.customer, status: "active", plan: "free" }), now() + 1);
    expect(codes(await exportCheck())).toContain("not_in_plan");
  });

  it("keeps full access while past_due within the grace period, then drops to read-only", async () => {
    const t = customerTenant("grace");
    await send("customer.subscription.updated", subscription({ id: "sub_grace", customer: t.customer, status: "past_due", plan: "pro" }));
    const create = () => sidecar.check(checkRequest(t.tenantId, t.owner, "projects.create"));
    expect((await create()).allow).toBe(true);
    clock.advance(13 * 86_400_000);
    expect((await create()).allow).toBe(true);
    clock.advance(2 * 86_400_000);
    expect(codes(await create())).toEqual(["billing_read_only"]);
    expect((await sidecar.check(checkRequest(t.tenantId, t.owner, "projects.read"))).allow).toBe(true);
    clock.set(START);
  });

  it("makes an unpaid tenant read-only", async () => {
    const t = customerTenant("unpaid");
    await send("customer.subscription.updated", subscription({ id: "sub_unpaid", customer: t.customer, status: "unpaid", plan: "pro" }));
    expect(codes(await sidecar.check(checkRequest(t.tenantId, t.owner, "projects.create")))).toEqual(["billing_read_only"]);
    expect((await sidecar.check(checkRequest(t.tenantId, t.owner, "projects.read"))).allow).toBe(true);
  });

  it("honours cancel_at_period_end: pro until the period ends, free after, before Stripe says so", async () => {
    const t = customerTenant("cancel_later");
    const periodEnd = now() + 3600;
    await send("customer.subscription.updated", subscription({ id: "sub_cl", customer: t.customer, status: "active", plan: "pro", cancelAtPeriodEnd: true, periodEnd }));
    const exportCheck = () => sidecar.check(checkRequest(t.tenantId, t.owner, "reports.export"));
    expect((await exportCheck()).allow).toBe(true);
    clock.set(periodEnd * 1000);
    expect(codes(await exportCheck())).toContain("not_in_plan");
    expect((await sidecar.check(checkRequest(t.tenantId, t.owner, "projects.read"))).allow).toBe(true);
    // Metering and GetEntitlements see the same plan in force as decisions do.
    expect((await sidecar.entitlements.get({ tenantId: t.tenantId })).planCode).toBe("free");
    const consume = await sidecar.entitlements.consume({ tenantId: t.tenantId, meter: "exports.csv.monthly", amount: 1, idempotencyKey: "after-period" });
    expect(consume.reasons[0]?.code).toBe("not_in_plan");
    clock.set(START);
  });

  it("adds the seats add-on quantity to the seat limit", async () => {
    const t = customerTenant("seats");
    await send("customer.subscription.created", subscription({ id: "sub_seats", customer: t.customer, status: "active", plan: "pro", seats: 5 }));
    const seats = (await sidecar.entitlements.get({ tenantId: t.tenantId })).limits.find((l) => l.meter === "seats");
    expect(seats).toMatchObject({ hard: 15, sources: ["plan:pro", "addon:seatsx5"] });
  });

  it("maps a customer to its tenant from metadata.tenant_id, and grants Stripe Entitlements features", async () => {
    sidecar.seed({ tenants: [{ id: "ten_meta", slug: "meta", planCode: "pro" }] });
    await send("customer.created", fixture("customer", { id: "cus_meta", metadata: { tenant_id: "ten_meta" } }));
    const summary = fixture("entitlements.active_entitlement_summary", {
      customer: "cus_meta",
      entitlements: { object: "list", has_more: false, url: "/v1/entitlements/active_entitlements", data: [
        { id: "ent_1", object: "entitlements.active_entitlement", livemode: false, lookup_key: "sso", feature: { id: "feat_1", lookup_key: "sso" } },
      ] },
    });
    const response = await send("entitlements.active_entitlement_summary.updated", summary);
    expect(response.body.outcome).toBe("applied");
    const report = await sidecar.entitlements.get({ tenantId: "ten_meta" });
    expect(report.entitlements.find((e) => e.key === "sso")).toMatchObject({ source: "stripe" });
  });

  it("mirrors invoices", async () => {
    const t = customerTenant("invoice");
    await send("invoice.payment_failed", fixture("invoice", { id: "in_test_1", customer: t.customer, status: "open", amount_due: 4900 }));
    await send("invoice.paid", fixture("invoice", { id: "in_test_1", customer: t.customer, status: "paid", amount_paid: 4900 }), now() + 5);
    expect(sidecar.bulkhead.db.prepare("SELECT status, amount_paid FROM invoices WHERE id = 'in_test_1'").get()).toEqual({ status: "paid", amount_paid: 4900 });
  });
});
