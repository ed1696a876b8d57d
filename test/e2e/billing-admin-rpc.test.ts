import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRevision } from "../../src/store/revision-writer.js";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { startStripeMock } from "../support/processes.js";
import { startSidecar, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliver, event, sign, subscriptionObject } from "../support/stripe-events.js";
import { epochSeconds, MINUTE, testClock } from "../support/test-time.js";

// The billing RPCs (ADR 78) on a single-node sidecar: the same use cases,
// applied locally. Staff roles come from real PutStaff tokens.
const clock = testClock();
const MOCK_SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";
const MOCK_CUSTOMER = "cus_QXg1o8vcGmoR32";
let sidecar: TestSidecar;
let mock: { url: string; stop: () => void };
let call: AdminCall;
let close = () => {};
const staff: Record<string, string> = {};
const as = (id: string) => adminAuth(staff[id], "");
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e: { code: number; details: string }) => e);
const billingStatus = () => sidecar.bulkhead.db.prepare("SELECT billing_status FROM tenants WHERE id = 'ten_drift'").pluck().get();
const auditCount = () => sidecar.bulkhead.db.prepare("SELECT count(*) FROM admin_audit WHERE action LIKE 'billing.%'").pluck().get();

beforeAll(async () => {
  mock = await startStripeMock();
  sidecar = await startSidecar({ runtime: { clock }, config: { stripeApiKey: "sk_test_123", stripeApiUrl: mock.url } });
  sidecar.seed({ tenants: [{ id: "ten_drift", slug: "drift", planCode: "pro" }], billingCustomers: [{ customerId: MOCK_CUSTOMER, tenantId: "ten_drift" }] });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  for (const [id, role] of [["stf_agent", "support_agent"], ["stf_fin", "finance"]]) {
    staff[id!] = (await call<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding: new hire" })).token;
  }
  const payload = event("evt_single_past_due", "customer.subscription.updated",
    subscriptionObject({ id: MOCK_SUBSCRIPTION, customer: MOCK_CUSTOMER, status: "past_due", plan: "pro" }), epochSeconds(clock.now() - MINUTE));
  expect((await deliver(sidecar.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, epochSeconds(clock.now())))).body.outcome).toBe("applied");
}, 120_000);
afterAll(async () => {
  close();
  mock?.stop();
  await sidecar?.close();
});

describe("billing RPCs on a single-node sidecar", () => {
  it("a support_agent may list the tenant's events but not replay, reconcile or recalculate; nothing is written", async () => {
    const before = readRevision(sidecar.bulkhead.db);
    for (const [method, request] of [
      ["replayBillingEvent", { eventId: "evt_single_past_due", reason: "billing_correction" }],
      ["reconcileBilling", { dryRun: false, reason: "billing_correction" }],
      ["recalculateEntitlements", { tenantId: "ten_drift", reason: "billing_correction" }],
    ] as const) {
      const error = await failure(call(method, request, as("stf_agent")));
      expect(error.code, method).toBe(status.PERMISSION_DENIED);
      expect(error.details).toContain("billing.write");
    }
    expect(readRevision(sidecar.bulkhead.db)).toBe(before);
    expect(auditCount()).toBe(0);
    const { events } = await call("listBillingEvents", { tenantId: "ten_drift" }, as("stf_agent"));
    expect(events).toEqual([{ eventId: "evt_single_past_due", type: "customer.subscription.updated", outcome: "applied", created: epochSeconds(clock.now() - MINUTE) * 1000 }]);
    expect((await failure(call("listBillingEvents", { tenantId: "ten_drift", limit: 201 }, as("stf_agent")))).code).toBe(status.INVALID_ARGUMENT);
  });

  it("finance reconciles (dry run first, then apply), replays and recalculates; a reason that is no reason code is refused", async () => {
    const bad = await failure(call("reconcileBilling", { dryRun: false, reason: "because" }, as("stf_fin")));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    const dry = await call("reconcileBilling", { dryRun: true, reason: "billing_correction" }, as("stf_fin"));
    expect(dry).toMatchObject({ checked: 1, applied: false });
    expect(billingStatus()).toBe("past_due");
    const applied = await call("reconcileBilling", { dryRun: false, reason: "billing_correction: drift" }, as("stf_fin"));
    expect(applied).toMatchObject({ checked: 1, applied: true });
    expect(billingStatus()).toBe("active");
    const replay = await call("replayBillingEvent", { eventId: "evt_single_past_due", reason: "billing_correction" }, as("stf_fin"));
    expect(replay.outcome).toBe("stale");
    expect(billingStatus()).toBe("active");
    await call("recalculateEntitlements", { tenantId: "ten_drift", reason: "billing_correction" }, as("stf_fin"));
    const actions = sidecar.bulkhead.db.prepare("SELECT action, actor FROM admin_audit WHERE action LIKE 'billing.%' ORDER BY rowid").all();
    expect(actions).toEqual([
      { action: "billing.reconcile", actor: "staff:stf_fin" },
      { action: "billing.replay", actor: "staff:stf_fin" },
      { action: "billing.recalculate", actor: "staff:stf_fin" },
    ]);
  });
});
