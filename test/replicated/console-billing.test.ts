import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRevision } from "../../src/store/revision-writer.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { startStripeMock } from "../support/processes.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import { TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliverMockSubscription, STRIPE_MOCK_SUBSCRIPTION } from "../support/stripe-events.js";
import { testClock } from "../support/test-time.js";

// The console's billing actions on one of two real sidecars over a real
// three-node JetStream cluster (stripe-mock for reconcile): BillingAdmin
// writes commands, so a console click on A is the same repair on B.
const clock = testClock();
const BILLING = "/console/tenants/ten_globex/billing";
let sidecars: TestSidecar[] = [];
let mock: { url: string; stop: () => void };
let closeAll = async () => {};
let staff: Record<string, string> = {};

const caughtUp = async () => {
  for (const s of sidecars) await s.bulkhead.replication!.catchUp();
};
const billingStatus = (s: TestSidecar) => s.bulkhead.db.prepare("SELECT billing_status FROM tenants WHERE id = 'ten_globex'").pluck().get();
const audit = (s: TestSidecar) =>
  s.bulkhead.db.prepare("SELECT action, actor, object, reason, source FROM admin_audit WHERE action LIKE 'billing.%' ORDER BY rowid").all();

beforeAll(async () => {
  mock = await startStripeMock();
  let admins;
  ({ sidecars, admins, close: closeAll } = await startReplicatedSidecars({
    clock, count: 2, stream: "BULKHEAD_CONSOLE_BILLING", config: { console: true, stripeApiKey: "sk_test_123", stripeApiUrl: mock.url },
  }));
  staff = await issueStaff(admins[0]!, [["stf_fin", "finance"]]);
  expect(await deliverMockSubscription(sidecars[0]!.httpPort, TEST_WEBHOOK_SECRET, "evt_console_rep", "past_due", clock.now(), "ten_globex")).toBe("applied");
  await caughtUp();
}, 180_000);
afterAll(async () => {
  await closeAll();
  mock?.stop();
});

describe("console billing on two sidecars", () => {
  it("a dry run then apply on A's console repairs both sidecars alike, audited with source console; replay and recalculate too", async () => {
    const fin = await signedIn(sidecars[0]!.httpPort, staff.stf_fin!, "ten_globex");
    await fin.post(`${BILLING}/reconcile/dry-run`, { reason_code: "billing_correction" });
    const plan = /name="plan" value="([0-9a-f]{16})"/.exec((await fin.get(BILLING)).body)![1]!;
    await caughtUp();
    for (const s of sidecars) expect(billingStatus(s)).toBe("past_due");
    const reason = { reason_code: "billing_correction", reason_text: "console" };
    expect((await fin.post(`${BILLING}/reconcile/apply`, { plan, ...reason })).status).toBe(303);
    expect((await fin.post(`${BILLING}/replay`, { event_id: "evt_console_rep", ...reason })).status).toBe(303);
    expect((await fin.post(`${BILLING}/recalculate`, reason)).status).toBe(303);
    await caughtUp();
    const by = { actor: "staff:stf_fin", reason: "billing_correction: console", source: "console" };
    const expected = [
      { action: "billing.reconcile", object: `subscription:${STRIPE_MOCK_SUBSCRIPTION}`, ...by },
      { action: "billing.replay", object: "billing_event:evt_console_rep", ...by },
      { action: "billing.recalculate", object: "tenant:ten_globex", ...by },
    ];
    for (const s of sidecars) {
      expect(billingStatus(s)).toBe("active");
      expect(audit(s)).toEqual(expected);
    }
    expect(readRevision(sidecars[1]!.bulkhead.db)).toBe(readRevision(sidecars[0]!.bulkhead.db));
  });
});
