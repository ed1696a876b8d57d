import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRevision } from "../../src/store/revision-writer.js";
import { adminClient } from "../support/admin-client.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { startStripeMock } from "../support/processes.js";
import { startSidecar, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliverMockSubscription, STRIPE_MOCK_CUSTOMER, STRIPE_MOCK_SUBSCRIPTION } from "../support/stripe-events.js";
import { DAY, MINUTE, testClock } from "../support/test-time.js";

// The console's billing sections and page group over real HTTP against a
// real sidecar reconciling with stripe-mock; staff tokens from PutStaff.
const clock = testClock();
const MARKUP = `<img src=x onerror=alert(1)>Drift & "Co"`;
let sidecar: TestSidecar;
let mock: { url: string; stop: () => void };
let close = () => {};
let staff: Record<string, string> = {};

const db = () => sidecar.bulkhead.db;
const billingStatus = () => db().prepare("SELECT billing_status FROM tenants WHERE id = 'ten_drift'").pluck().get();
const billingAudit = () => db().prepare("SELECT action, actor, reason, source, object FROM admin_audit WHERE action LIKE 'billing.%' ORDER BY rowid").all();
const eventOutcome = () => db().prepare("SELECT outcome FROM billing_events WHERE event_id = 'evt_console_past_due'").pluck().get();
const as = (who: string, select?: string) => signedIn(sidecar.httpPort, staff[who]!, select);
const reason = { reason_code: "billing_correction", reason_text: "ticket 42" };
const BILLING = "/console/tenants/ten_drift/billing";

beforeAll(async () => {
  mock = await startStripeMock();
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true, stripeApiKey: "sk_test_123", stripeApiUrl: mock.url } });
  sidecar.seed({
    tenants: [{ id: "ten_drift", slug: "drift", name: MARKUP, planCode: "pro" }],
    billingCustomers: [{ customerId: STRIPE_MOCK_CUSTOMER, tenantId: "ten_drift" }],
    // stripe-mock's price has no lookup key; the catalog maps its price id.
    planLookupKeys: [{ lookupKey: "price_1PgafmB7WZ01zgkW6dKueIc5", planCode: "pro" }],
    usage: [{ tenantId: "ten_drift", meter: "exports.csv.monthly", used: 85 }],
    overrides: [{ tenantId: "ten_drift", entitlement: "sso", effect: "grant", reason: "billing_correction", author: "staff:seed", expiresAt: clock.now() + 10 * DAY }],
  });
  const admin = adminClient(sidecar.grpcAddress);
  close = () => admin.client.close();
  staff = await issueStaff(admin.call, [["stf_agent", "support_agent"], ["stf_fin", "finance"], ["stf_admin", "support_admin"]]);
  expect(await deliverMockSubscription(sidecar.httpPort, TEST_WEBHOOK_SECRET, "evt_console_past_due", "past_due", clock.now())).toBe("applied");
}, 120_000);
afterAll(async () => {
  close();
  mock?.stop();
  await sidecar?.close();
});

describe("console tenant billing sections", () => {
  it("show entitlements with sources and expiries, usage with resets and soft-limit warnings, and Stripe events, the name escaped", async () => {
    const page = await (await as("stf_agent", "ten_drift")).get("/console/tenants/ten_drift");
    expect(page.status).toBe(200);
    expect(page.body).toContain(`<tr><td>sso</td><td>override</td>`);
    expect(page.body).toContain(`<td>${new Date(clock.now() + 10 * DAY).toISOString()}</td>`);
    expect(page.body).toContain(`<tr><td>analytics.pro</td><td>plan</td><td>pro</td><td>never</td></tr>`);
    expect(page.body).toMatch(/<tr><td>exports\.csv\.monthly<\/td><td>consumable<\/td><td>85<\/td><td>0<\/td><td>80<\/td>\s*<td>100<\/td><td>15<\/td><td>[^<]+<\/td><td>plan:pro<\/td>\s*<td><span class="warning">soft limit reached<\/span>/);
    expect(page.body).toContain("<td>evt_console_past_due</td><td>customer.subscription.updated</td><td>applied</td>");
    expect(page.body).toContain("&lt;img src=x onerror=alert(1)&gt;Drift &amp; &quot;Co&quot;");
    expect(page.body).not.toContain("<img");
  });

  it("a support agent sees no billing action and no export action, and the billing POSTs made by hand are refused with nothing done", async () => {
    const agent = await as("stf_agent", "ten_drift");
    const page = await agent.get("/console/tenants/ten_drift");
    expect(page.body).not.toMatch(/href="\/console\/billing"|action="[^"]*(billing|export)[^"]*"|reconcile|recalculate|replay/i);
    expect((await agent.get(BILLING)).status).toBe(403);
    const before = { revision: readRevision(db()), status: billingStatus(), audit: billingAudit().length, outcome: eventOutcome() };
    // A valid session and CSRF token (read from the page above), only the role is wrong.
    for (const [path, fields] of [
      [`${BILLING}/reconcile/dry-run`, {}],
      [`${BILLING}/reconcile/apply`, { plan: "0000000000000000" }],
      [`${BILLING}/replay`, { event_id: "evt_console_past_due" }],
      [`${BILLING}/recalculate`, {}],
    ] as const) {
      const refused = await agent.post(path, { ...fields, ...reason });
      expect(refused.status, path).toBe(403);
      expect(refused.body).toContain("billing.write");
    }
    expect({ revision: readRevision(db()), status: billingStatus(), audit: billingAudit().length, outcome: eventOutcome() }).toEqual(before);
    // support_admin may fix directories, never billing.
    expect((await (await as("stf_admin", "ten_drift")).post(`${BILLING}/recalculate`, reason)).status).toBe(403);
  });
});

describe("console billing page", () => {
  it("refuses another tenant's billing page, and replaying this tenant's event from it, until that tenant is selected", async () => {
    const fin = await as("stf_fin", "ten_drift");
    const other = await fin.get("/console/tenants/ten_acme/billing");
    expect(other.status).toBe(403);
    expect(other.body).toContain("select tenant");
    expect((await fin.post("/console/tenants/ten_acme/billing/recalculate", reason)).status).toBe(403);
    await fin.post("/console/tenants/ten_acme/select", { reason_code: "customer_request" });
    expect((await fin.get("/console/tenants/ten_acme/billing")).status).toBe(200);
    // ten_drift's event is not ten_acme's to replay.
    const foreign = await fin.post("/console/tenants/ten_acme/billing/replay", { event_id: "evt_console_past_due", ...reason });
    expect(foreign.status).toBe(404);
    expect(eventOutcome()).toBe("applied");
    expect(billingAudit()).toEqual([]);
  });

  it("finance runs a dry run (the planned repairs, nothing written), then applies it; audited with the reason code and source console", async () => {
    const fin = await as("stf_fin", "ten_drift");
    expect((await fin.get("/console/billing")).body).toContain(`href="${BILLING}"`);
    const noReason = await fin.post(`${BILLING}/reconcile/dry-run`, {});
    expect(noReason.status).toBe(400);
    expect(noReason.body).toContain("reason");
    const blind = await fin.post(`${BILLING}/reconcile/apply`, { plan: "0000000000000000", ...reason });
    expect(blind.status).toBe(412);
    expect(billingStatus()).toBe("past_due");

    expect((await fin.post(`${BILLING}/reconcile/dry-run`, reason)).location).toBe(BILLING);
    const page = await fin.get(BILLING);
    expect(page.body).toContain(`<tr><td>${STRIPE_MOCK_SUBSCRIPTION}</td><td>status</td><td>&quot;past_due&quot;</td><td>&quot;active&quot;</td></tr>`);
    expect(page.body).toContain("&lt;img src=x onerror=alert(1)&gt;Drift");
    expect(page.body).not.toContain("<img");
    expect(billingStatus()).toBe("past_due");
    expect(billingAudit()).toEqual([]);
    const plan = /name="plan" value="([0-9a-f]{16})"/.exec(page.body)![1]!;

    expect((await fin.post(`${BILLING}/reconcile/apply`, { plan: plan.replace(/^./, (c) => (c === "0" ? "1" : "0")), ...reason })).status).toBe(412);
    expect(billingStatus()).toBe("past_due");
    const noReasonApply = await fin.post(`${BILLING}/reconcile/apply`, { plan });
    expect(noReasonApply.status).toBe(400);
    expect(billingStatus()).toBe("past_due");
    expect((await fin.post(`${BILLING}/reconcile/apply`, { plan, ...reason })).status).toBe(303);
    expect(billingStatus()).toBe("active");
    expect((await fin.get(BILLING)).body).toContain("Reconciled: repaired 1 subscription(s)");
    // The plan was used up: posting it again is refused, not a second repair.
    expect((await fin.post(`${BILLING}/reconcile/apply`, { plan, ...reason })).status).toBe(412);

    await fin.post(`${BILLING}/replay`, { event_id: "evt_console_past_due", ...reason });
    expect((await fin.get(BILLING)).body).toContain("Replayed evt_console_past_due: stale.");
    expect(billingStatus()).toBe("active");
    expect((await fin.post(`${BILLING}/recalculate`, reason)).status).toBe(303);
    const by = { actor: "staff:stf_fin", reason: "billing_correction: ticket 42", source: "console" };
    expect(billingAudit()).toEqual([
      { action: "billing.reconcile", object: `subscription:${STRIPE_MOCK_SUBSCRIPTION}`, ...by },
      { action: "billing.replay", object: expect.stringContaining("evt_console_past_due"), ...by },
      { action: "billing.recalculate", object: "tenant:ten_drift", ...by },
    ]);
  });

  it("refuses an apply whose drift moved after the dry run (a webhook in between): the reviewer dry-runs again", async () => {
    const fin = await as("stf_fin", "ten_drift");
    // Later than the repair's watermark, so these events apply.
    clock.advance(5 * MINUTE);
    expect(await deliverMockSubscription(sidecar.httpPort, TEST_WEBHOOK_SECRET, "evt_console_unpaid", "unpaid", clock.now())).toBe("applied");
    await fin.post(`${BILLING}/reconcile/dry-run`, reason);
    const plan = /name="plan" value="([0-9a-f]{16})"/.exec((await fin.get(BILLING)).body)![1]!;
    clock.advance(5 * MINUTE);
    expect(await deliverMockSubscription(sidecar.httpPort, TEST_WEBHOOK_SECRET, "evt_console_past_due_2", "past_due", clock.now())).toBe("applied");
    const audited = billingAudit().length;
    const moved = await fin.post(`${BILLING}/reconcile/apply`, { plan, ...reason });
    expect(moved.status).toBe(412);
    expect(moved.body).toContain("the drift changed since the dry run");
    expect(billingStatus()).toBe("past_due");
    expect(billingAudit()).toHaveLength(audited);
  });
});
