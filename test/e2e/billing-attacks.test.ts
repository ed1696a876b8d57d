import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSidecar, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliver, event, fixture, sign, subscriptionObject, type SubscriptionSpec } from "../support/stripe-events.js";
import { epochSeconds, testClock } from "../support/test-time.js";

// Attacks on the billing mirror found by an adversarial review; each failed
// before its fix.
let sidecar: TestSidecar;
let seq = 0;
const clock = testClock();
const now = () => epochSeconds(clock.now());

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
});
afterAll(() => sidecar.close());

async function send(type: string, object: Record<string, unknown>, created = now(), id = `evt_atk_${String(++seq).padStart(4, "0")}`) {
  const payload = event(id, type, object, created);
  return deliver(sidecar.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, now()));
}
const sub = (spec: SubscriptionSpec) => subscriptionObject(spec);
const tenant = (id: string) => sidecar.bulkhead.db.prepare("SELECT plan_code, billing_status FROM tenants WHERE id = ?").get(id);

function payingTenant(name: string, plan = "enterprise") {
  const tenantId = `ten_${name}`;
  sidecar.seed({ tenants: [{ id: tenantId, slug: name.replace(/_/g, "-"), planCode: "free" }], billingCustomers: [{ customerId: `cus_${name}`, tenantId }] });
  return { tenantId, customer: `cus_${name}`, plan };
}

describe("customer mapping", () => {
  it("ignores a buyer-controlled client_reference_id naming someone else's tenant", async () => {
    const victim = payingTenant("victim");
    await send("customer.subscription.created", sub({ id: "sub_victim", customer: victim.customer, status: "active", plan: "enterprise" }));
    const checkout = await send("checkout.session.completed", fixture("checkout.session", { id: "cs_attack", customer: "cus_attacker", client_reference_id: victim.tenantId, metadata: {} }));
    expect(checkout.body.outcome).toBe("unmapped");
    await send("customer.subscription.created", sub({ id: "sub_attacker", customer: "cus_attacker", status: "active", plan: "pro", cancelAtPeriodEnd: true }));
    expect(tenant(victim.tenantId)).toEqual({ plan_code: "enterprise", billing_status: "active" });
  });

  it("never moves a mapped customer to another tenant on a webhook", async () => {
    const owner = payingTenant("owner_a");
    sidecar.seed({ tenants: [{ id: "ten_other_b", slug: "other-b", planCode: "free" }] });
    await send("customer.subscription.created", sub({ id: "sub_owner_a", customer: owner.customer, status: "active", plan: "enterprise" }));
    const remap = await send("customer.updated", fixture("customer", { id: owner.customer, metadata: { tenant_id: "ten_other_b" } }));
    expect(remap.body.outcome).toBe("unmapped");
    await send("customer.subscription.updated", sub({ id: "sub_owner_a", customer: owner.customer, status: "active", plan: "enterprise", tenantId: "ten_other_b" }));
    expect(tenant("ten_other_b")).toEqual({ plan_code: "free", billing_status: "active" });
    expect(tenant(owner.tenantId)).toEqual({ plan_code: "enterprise", billing_status: "active" });
  });

  it("recomputes the tenant a subscription left when an event moves it to another customer (review item 8)", async () => {
    const a = payingTenant("moved_from");
    const b = payingTenant("moved_to");
    await send("customer.subscription.created", sub({ id: "sub_moving", customer: a.customer, status: "active", plan: "enterprise" }));
    expect(tenant(a.tenantId)).toEqual({ plan_code: "enterprise", billing_status: "active" });
    const moved = await send("customer.subscription.updated", sub({ id: "sub_moving", customer: b.customer, status: "active", plan: "enterprise" }));
    expect(moved.body.outcome).toBe("applied");
    expect(tenant(a.tenantId)).toMatchObject({ plan_code: "free" });
    await send("customer.subscription.deleted", sub({ id: "sub_moving", customer: b.customer, status: "canceled", plan: "enterprise" }));
    expect(tenant(a.tenantId)).toMatchObject({ plan_code: "free" });
    expect(tenant(b.tenantId)).toMatchObject({ plan_code: "free" });
    // The move is on record for an operator, naming both sides.
    const notice = sidecar.bulkhead.db
      .prepare("SELECT tenant_id, reason FROM admin_audit WHERE action = 'billing.subscription_moved' AND object = 'subscription:sub_moving'")
      .get() as { tenant_id: string; reason: string };
    expect(notice.tenant_id).toBe(a.tenantId);
    expect(notice.reason).toContain(b.customer);
  });

  it("keeps a tenant's other live subscription when one of its subscriptions moves away", async () => {
    const a = payingTenant("two_subs");
    const b = payingTenant("takes_one");
    await send("customer.subscription.created", sub({ id: "sub_stays", customer: a.customer, status: "active", plan: "pro" }));
    await send("customer.subscription.created", sub({ id: "sub_leaves", customer: a.customer, status: "active", plan: "enterprise" }));
    await send("customer.subscription.updated", sub({ id: "sub_leaves", customer: b.customer, status: "active", plan: "enterprise" }));
    expect(tenant(a.tenantId)).toEqual({ plan_code: "pro", billing_status: "active" });
    expect(tenant(b.tenantId)).toEqual({ plan_code: "enterprise", billing_status: "active" });
  });

  it("applies a subscription that arrived before its customer was mapped, once the mapping arrives", async () => {
    sidecar.seed({ tenants: [{ id: "ten_early", slug: "early", planCode: "free" }] });
    const early = await send("customer.subscription.created", sub({ id: "sub_early", customer: "cus_early", status: "active", plan: "pro" }));
    expect(early.body.outcome).toBe("unmapped");
    const checkout = await send("checkout.session.completed", fixture("checkout.session", { id: "cs_early", customer: "cus_early", metadata: { tenant_id: "ten_early" } }));
    expect(checkout.body.outcome).toBe("applied");
    expect(tenant("ten_early")).toEqual({ plan_code: "pro", billing_status: "active" });
  });
});

describe("subscription state", () => {
  it("keeps a canceled subscription canceled when an update with the same second arrives after it", async () => {
    const t = payingTenant("tie");
    const created = now();
    await send("customer.subscription.created", sub({ id: "sub_tie", customer: t.customer, status: "active", plan: "pro" }), created - 10, "evt_tie_0");
    await send("customer.subscription.deleted", sub({ id: "sub_tie", customer: t.customer, status: "canceled", plan: "pro" }), created, "evt_tie_A");
    const late = await send("customer.subscription.updated", sub({ id: "sub_tie", customer: t.customer, status: "active", plan: "pro" }), created, "evt_tie_B");
    expect(late.body.outcome).toBe("stale");
    expect(tenant(t.tenantId)).toEqual({ plan_code: "free", billing_status: "canceled" });
  });

  it("drops to free when the price names no plan, instead of keeping a richer one", async () => {
    const t = payingTenant("unknown_price");
    await send("customer.subscription.created", sub({ id: "sub_up2", customer: t.customer, status: "active", plan: "enterprise" }));
    await send("customer.subscription.updated", sub({ id: "sub_up2", customer: t.customer, status: "active", plan: "starter_monthly_2027" }), now() + 1);
    expect(tenant(t.tenantId)).toEqual({ plan_code: "free", billing_status: "active" });
  });

  it("does not let a newer incomplete upgrade demote a tenant with an active subscription", async () => {
    const t = payingTenant("two_subs");
    await send("customer.subscription.created", sub({ id: "sub_two_a", customer: t.customer, status: "active", plan: "enterprise" }), now() - 100);
    await send("customer.subscription.created", sub({ id: "sub_two_b", customer: t.customer, status: "incomplete", plan: "pro" }), now());
    expect(tenant(t.tenantId)).toEqual({ plan_code: "enterprise", billing_status: "active" });
  });
});
