import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRevision } from "../../src/store/revision-writer.js";
import { adminAuth, type AdminCall } from "../support/admin-client.js";
import { startStripeMock } from "../support/processes.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import { TEST_SYNC_TOKEN, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliver, event, sign, subscriptionObject } from "../support/stripe-events.js";
import { epochSeconds, MINUTE, testClock } from "../support/test-time.js";

// Billing operations as AdminService commands (ADR 78) on three real sidecars
// over a real three-node JetStream cluster, reconciling against a real
// stripe-mock: one call on one sidecar has the same effect on all three.
const clock = testClock();
// stripe-mock's one subscription (Stripe's fixture): active, for this customer.
const MOCK_SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";
const MOCK_CUSTOMER = "cus_QXg1o8vcGmoR32";
const [A, B, C] = [0, 1, 2];
let sidecars: TestSidecar[] = [];
let admins: AdminCall[] = [];
let mock: { url: string; stop: () => void };
let closeAll = async () => {};

beforeAll(async () => {
  mock = await startStripeMock();
  ({ sidecars, admins, close: closeAll } = await startReplicatedSidecars({
    clock, stream: "BULKHEAD_BILLING_ADMIN", config: { stripeApiKey: "sk_test_123", stripeApiUrl: mock.url },
  }));
}, 120_000);

afterAll(async () => {
  await closeAll();
  mock?.stop();
});

const caughtUp = async () => {
  for (const s of sidecars) await s.bulkhead.replication!.catchUp();
};
const revisions = () => sidecars.map((s) => readRevision(s.bulkhead.db));
const auditRows = (s: TestSidecar, action: string) =>
  s.bulkhead.db.prepare("SELECT actor, tenant_id, object, reason, source FROM admin_audit WHERE action = ? ORDER BY rowid").all(action);
const billingStatus = (s: TestSidecar, tenantId: string) =>
  s.bulkhead.db.prepare("SELECT billing_status FROM tenants WHERE id = ?").pluck().get(tenantId);
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e: { code: number; details: string }) => e);

/** A subscription event for stripe-mock's subscription, naming ten_globex, delivered to sidecar A's webhook. */
async function subscriptionEvent(id: string, subscriptionStatus: string, createdMs: number) {
  const object = subscriptionObject({ id: MOCK_SUBSCRIPTION, customer: MOCK_CUSTOMER, status: subscriptionStatus, plan: "pro", tenantId: "ten_globex" });
  const payload = event(id, "customer.subscription.updated", object, epochSeconds(createdMs));
  return deliver(sidecars[A]!.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, epochSeconds(clock.now())));
}

describe("billing operations on three sidecars", () => {
  it("reconcile: a dry run on A reports the drift and writes nothing; applying on B repairs every sidecar the same, audited once each", async () => {
    const delivered = await subscriptionEvent("evt_rep_past_due", "past_due", clock.now() - MINUTE);
    expect(delivered.body.outcome).toBe("applied");
    await caughtUp();
    for (const s of sidecars) expect(billingStatus(s, "ten_globex")).toBe("past_due");
    const before = revisions();

    const dry = await admins[A]!("reconcileBilling", { dryRun: true, reason: "billing_correction: check drift" });
    expect(dry).toMatchObject({ checked: 1, applied: false, storeRevision: 0 });
    expect(dry.drift).toHaveLength(1);
    expect(dry.drift[0]).toMatchObject({ subscriptionId: MOCK_SUBSCRIPTION, tenantId: "ten_globex" });
    expect(JSON.parse(dry.drift[0].changesJson).status).toEqual(["past_due", "active"]);
    await caughtUp();
    expect(revisions()).toEqual(before);
    for (const s of sidecars) expect(auditRows(s, "billing.reconcile")).toEqual([]);

    const applied = await admins[B]!("reconcileBilling", { dryRun: false, reason: "billing_correction: repair drift" });
    expect(applied).toMatchObject({ checked: 1, applied: true });
    // One command: every sidecar moved by exactly one revision, to the same one.
    expect(applied.storeRevision).toBe(before[B]! + 1);
    await caughtUp();
    expect(revisions()).toEqual(before.map(() => applied.storeRevision));
    for (const s of sidecars) {
      expect(billingStatus(s, "ten_globex")).toBe("active");
      expect(auditRows(s, "billing.reconcile")).toEqual([
        { actor: "bootstrap:usr_ops", tenant_id: "ten_globex", object: `subscription:${MOCK_SUBSCRIPTION}`, reason: "billing_correction: repair drift", source: "admin_api" },
      ]);
    }

    // The repair's watermark holds everywhere: an older event still in flight is stale.
    const late = await subscriptionEvent("evt_rep_late", "unpaid", clock.now() - MINUTE / 2);
    expect(late.body.outcome).toBe("stale");
    await caughtUp();
    for (const s of sidecars) expect(billingStatus(s, "ten_globex")).toBe("active");
  });

  it("replay on A is one command: one audit row and one revision on every sidecar, the same outcome everywhere", async () => {
    await caughtUp();
    const before = revisions();
    const replayed = await admins[A]!("replayBillingEvent", { eventId: "evt_rep_past_due", reason: "billing_correction: replay" });
    // Older than the reconcile's watermark: replaying never rolls state back.
    expect(replayed).toMatchObject({ outcome: "stale", tenantId: "ten_globex", storeRevision: before[A]! + 1 });
    await caughtUp();
    expect(revisions()).toEqual(before.map(() => replayed.storeRevision));
    for (const s of sidecars) {
      expect(billingStatus(s, "ten_globex")).toBe("active");
      expect(auditRows(s, "billing.replay")).toEqual([
        { actor: "bootstrap:usr_ops", tenant_id: "ten_globex", object: "billing_event:evt_rep_past_due", reason: "billing_correction: replay", source: "admin_api" },
      ]);
    }
  });

  it("recalculate on C re-derives the tenant everywhere, audited; an unknown tenant or event is NOT_FOUND naming the field and appends nothing", async () => {
    await caughtUp();
    const before = revisions();
    const result = await admins[C]!("recalculateEntitlements", { tenantId: "ten_globex", reason: "billing_correction: recalc" });
    expect(result.storeRevision).toBe(before[C]! + 1);
    await caughtUp();
    expect(revisions()).toEqual(before.map(() => result.storeRevision));
    for (const s of sidecars) {
      expect(billingStatus(s, "ten_globex")).toBe("active");
      expect(auditRows(s, "billing.recalculate")).toEqual([
        { actor: "bootstrap:usr_ops", tenant_id: "ten_globex", object: "tenant:ten_globex", reason: "billing_correction: recalc", source: "admin_api" },
      ]);
    }

    const noTenant = await failure(admins[C]!("recalculateEntitlements", { tenantId: "ten_nobody", reason: "billing_correction" }));
    expect(noTenant.code).toBe(status.NOT_FOUND);
    expect(noTenant.details).toContain("tenant_id");
    const noEvent = await failure(admins[A]!("replayBillingEvent", { eventId: "evt_never_seen", reason: "billing_correction" }));
    expect(noEvent.code).toBe(status.NOT_FOUND);
    expect(noEvent.details).toContain("event_id");
    await caughtUp();
    expect(revisions()).toEqual(before.map(() => result.storeRevision));
  });

  it("a credential without billing.write (the directory sync token) is PERMISSION_DENIED and appends nothing; ListBillingEvents lists the tenant's events", async () => {
    await caughtUp();
    const before = revisions();
    const sync = adminAuth(TEST_SYNC_TOKEN, "idp-sync");
    for (const [method, request] of [
      ["replayBillingEvent", { eventId: "evt_rep_past_due", reason: "billing_correction" }],
      ["reconcileBilling", { dryRun: false, reason: "billing_correction" }],
      ["reconcileBilling", { dryRun: true, reason: "billing_correction" }],
      ["recalculateEntitlements", { tenantId: "ten_globex", reason: "billing_correction" }],
      ["listBillingEvents", { tenantId: "ten_globex" }],
    ] as const) {
      const error = await failure(admins[B]!(method, request, sync));
      expect(error.code, method).toBe(status.PERMISSION_DENIED);
    }
    await caughtUp();
    expect(revisions()).toEqual(before);
    for (const s of sidecars) expect(auditRows(s, "billing.replay")).toHaveLength(1);

    const { events } = await admins[C]!("listBillingEvents", { tenantId: "ten_globex", limit: 0 });
    expect(events.map((e: { eventId: string; outcome: string }) => [e.eventId, e.outcome])).toEqual([
      ["evt_rep_late", "stale"],
      ["evt_rep_past_due", "applied"],
    ]);
  });
});
