import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reconcileSubscriptions } from "../../src/billing/reconcile.js";
import { stripeClient } from "../../src/billing/stripe-webhook.js";
import { openDatabase } from "../../src/store/database.js";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { startSidecarProcess, startStripeMock } from "../support/processes.js";
import { startSidecar, TEST_ADMIN_TOKEN, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliver, event, sign, subscriptionObject } from "../support/stripe-events.js";

// stripe-mock serves this subscription (Stripe's fixture): active, for this customer.
const MOCK_SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";
const MOCK_CUSTOMER = "cus_QXg1o8vcGmoR32";
// This file runs on the wall clock, in every process: `bulkhead billing` is
// a child process on the system clock, and the in-process sidecar and the
// event times follow it. Nothing here depends on where a month ends.
const nowSeconds = () => Math.floor(Date.now() / 1000);
/** The compiled CLI against this file's sidecar over AdminService (ADR 84), with the bootstrap token. */
const billingCli = (...args: string[]) =>
  promisify(execFile)(process.execPath, [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "billing", ...args, "--addr", sidecar.grpcAddress], {
    env: { ...process.env, BULKHEAD_ADMIN_TOKEN: TEST_ADMIN_TOKEN },
  }).then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (e: { code: number; stdout: string; stderr: string }) => e);

let sidecar: TestSidecar;
let mock: { url: string; stop: () => void };

beforeAll(async () => {
  mock = await startStripeMock();
  // Reconcile lists Stripe on the sidecar taking the call: the key is the sidecar's.
  sidecar = await startSidecar({ config: { stripeApiKey: "sk_test_123", stripeApiUrl: mock.url } });
  sidecar.seed({
    tenants: [{ id: "ten_drift", slug: "drift", planCode: "pro" }],
    billingCustomers: [{ customerId: MOCK_CUSTOMER, tenantId: "ten_drift" }],
    // stripe-mock's price has no lookup key; the catalog maps its price id.
    planLookupKeys: [{ lookupKey: "price_1PgafmB7WZ01zgkW6dKueIc5", planCode: "pro" }],
  });
}, 300_000);
afterAll(async () => {
  mock?.stop();
  await sidecar?.close();
});

const post = async (type: string, object: Record<string, unknown>, created: number, id: string) => {
  const payload = event(id, type, object, created);
  return deliver(sidecar.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, nowSeconds()));
};
const tenant = (id: string) => sidecar.bulkhead.db.prepare("SELECT plan_code, billing_status FROM tenants WHERE id = ?").get(id);

describe("reconcile against stripe-mock", () => {
  it("reports drift as a dry run without writing, then repairs it with --apply and audits the repair", async () => {
    await post("customer.subscription.updated", subscriptionObject({ id: MOCK_SUBSCRIPTION, customer: MOCK_CUSTOMER, status: "past_due", plan: "pro" }), nowSeconds() - 60, "evt_drift_1");
    expect(tenant("ten_drift")).toEqual({ plan_code: "pro", billing_status: "past_due" });

    const dry = await billingCli("reconcile", "--reason", "billing_correction: check drift");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`${MOCK_SUBSCRIPTION} (ten_drift): status: "past_due" -> "active"`);
    expect(dry.stdout).toContain("dry run: nothing written");
    expect(tenant("ten_drift")).toEqual({ plan_code: "pro", billing_status: "past_due" });

    const applied = await billingCli("reconcile", "--apply", "--reason", "billing_correction: repair drift");
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/1 subscriptions checked, 1 drifted, repaired at revision \d+/);
    expect(tenant("ten_drift")).toEqual({ plan_code: "pro", billing_status: "active" });
    expect(sidecar.bulkhead.db.prepare("SELECT action, tenant_id FROM admin_audit WHERE object = ?").get(`subscription:${MOCK_SUBSCRIPTION}`))
      .toEqual({ action: "billing.reconcile", tenant_id: "ten_drift" });

    // An older event still in flight cannot undo the repair.
    const late = await post("customer.subscription.updated", subscriptionObject({ id: MOCK_SUBSCRIPTION, customer: MOCK_CUSTOMER, status: "unpaid", plan: "pro" }), nowSeconds() - 30, "evt_drift_2");
    expect(late.body.outcome).toBe("stale");
    expect(tenant("ten_drift")).toMatchObject({ billing_status: "active" });
  });
});

describe("reconcile racing a webhook", () => {
  it("does not overwrite an event applied after the listing began", async () => {
    const listingStarted = Date.now() - 60_000;
    // Applied while reconcile was (notionally) still listing: newer than the listing.
    await post("customer.subscription.updated", subscriptionObject({ id: MOCK_SUBSCRIPTION, customer: MOCK_CUSTOMER, status: "unpaid", plan: "pro" }), nowSeconds() + 5, "evt_race_1");
    const report = await reconcileSubscriptions(
      { writer: sidecar.bulkhead.writer, billing: sidecar.bulkhead.stores.billing, projector: sidecar.bulkhead.projector },
      stripeClient("sk_test_123", mock.url),
      { dryRun: false, now: listingStarted, actor: "test" },
    );
    expect(report.drift).toEqual([]);
    expect(tenant("ten_drift")).toMatchObject({ billing_status: "unpaid" });
  });
});

describe("replay", () => {
  it("re-applies a stored event once its customer is mapped, audited", async () => {
    sidecar.seed({ tenants: [{ id: "ten_later_mapped", slug: "later-mapped", planCode: "free" }] });
    const first = await post("customer.subscription.created", subscriptionObject({ id: "sub_replay", customer: "cus_replay", status: "active", plan: "enterprise" }), nowSeconds(), "evt_replay_1");
    expect(first.body.outcome).toBe("unmapped");
    sidecar.seed({ billingCustomers: [{ customerId: "cus_replay", tenantId: "ten_later_mapped" }] });
    const result = sidecar.bulkhead.projector.replay("evt_replay_1", "usr_ops", "customer mapped after the fact");
    expect(result).toMatchObject({ outcome: "applied", tenantId: "ten_later_mapped" });
    expect(tenant("ten_later_mapped")).toEqual({ plan_code: "enterprise", billing_status: "active" });
    expect(sidecar.bulkhead.db.prepare("SELECT actor, reason, result FROM admin_audit WHERE action = 'billing.replay'").get())
      .toEqual({ actor: "usr_ops", reason: "customer mapped after the fact", result: "applied" });
  });
});

describe("billing replay on the command line", () => {
  const replay = (reason: string) => billingCli("replay", "evt_cli_replay", "--reason", reason);
  const audited = () => sidecar.bulkhead.db.prepare("SELECT reason FROM admin_audit WHERE object = 'billing_event:evt_cli_replay'").pluck().all();

  it("takes --reason as a reason code like every admin write, and audits nothing for free text (review, also-list)", async () => {
    sidecar.seed({ tenants: [{ id: "ten_cli_replay", slug: "cli-replay", planCode: "free" }] });
    await post("customer.subscription.created", subscriptionObject({ id: "sub_cli_replay", customer: "cus_cli_replay", status: "active", plan: "pro" }), nowSeconds(), "evt_cli_replay");
    // Still unmapped: `events --unmapped` reads it from the file, with no token.
    const unmapped = await promisify(execFile)(process.execPath, [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "billing", "events", "--unmapped", "--db", sidecar.bulkhead.config.dbPath]);
    expect(unmapped.stdout).toContain("evt_cli_replay\tcustomer.subscription.created\n");
    sidecar.seed({ billingCustomers: [{ customerId: "cus_cli_replay", tenantId: "ten_cli_replay" }] });
    const refused = await replay("because I said so");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("must start with a reason code");
    expect(refused.stderr).toContain("(field reason)");
    expect(audited()).toEqual([]);
    const done = await replay("billing_correction: customer mapped late");
    expect(done.code).toBe(0);
    expect(done.stdout).toContain("applied for ten_cli_replay");
    expect(audited()).toEqual(["billing_correction: customer mapped late"]);
  });
});

describe("crash between receipt and commit", () => {
  it("loses nothing that was acknowledged when the process is killed mid-stream", async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), "bulkhead-crash-")), "crash.db");
    const env = { BULKHEAD_STRIPE_WEBHOOK_SECRETS: TEST_WEBHOOK_SECRET };
    const statuses = ["trialing", "active", "past_due", "active", "past_due", "unpaid", "active"];
    const base = nowSeconds() - 1000;
    const payloads = Array.from({ length: 60 }, (_, i) =>
      event(`evt_crash_${i}`, "customer.subscription.updated",
        subscriptionObject({ id: `sub_crash_${i % 6}`, customer: "cus_crash", status: statuses[i % statuses.length]!, plan: "pro", tenantId: "ten_acme" }), base + i),
    );
    const acknowledged = new Set<string>();
    const first = await startSidecarProcess(dbPath, env);
    const exited = new Promise((resolve) => first.child.once("exit", resolve));
    const sends = payloads.map(async (payload, i) => {
      await new Promise((r) => setTimeout(r, i * 3));
      try {
        const r = await deliver(first.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, nowSeconds()));
        if (r.status === 200) acknowledged.add(`evt_crash_${i}`);
        // Kill the process hard once a third of the stream was acknowledged, with the rest in flight.
        if (acknowledged.size === 20) first.child.kill("SIGKILL");
      } catch {
        // connection cut by the kill: not acknowledged, Stripe would retry
      }
    });
    await Promise.all(sends);
    await exited;

    const db = openDatabase(dbPath);
    const stored = new Set(db.prepare("SELECT event_id FROM billing_events").pluck().all() as string[]);
    db.close();
    expect(acknowledged.size).toBeGreaterThan(0);
    expect(acknowledged.size).toBeLessThan(payloads.length);
    for (const id of acknowledged) expect(stored.has(id), id).toBe(true);

    // Stripe retries everything it has no 200 for; the end state equals a clean run.
    const second = await startSidecarProcess(dbPath, env);
    try {
      for (const [i, payload] of payloads.entries()) {
        if (acknowledged.has(`evt_crash_${i}`)) continue;
        const r = await deliver(second.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, nowSeconds()));
        expect(r.status).toBe(200);
      }
    } finally {
      second.child.kill("SIGTERM");
    }
    const after = openDatabase(dbPath);
    expect(after.prepare("SELECT count(*) FROM billing_events").pluck().get()).toBe(payloads.length);
    const subs = after.prepare("SELECT id, status FROM subscriptions ORDER BY id").all();
    after.close();
    // Each subscription ends in the status of its newest event.
    const expected = Array.from({ length: 6 }, (_, k) => {
      const last = Math.max(...payloads.map((_, i) => i).filter((i) => i % 6 === k));
      return { id: `sub_crash_${k}`, status: statuses[last % statuses.length] };
    });
    expect(subs).toEqual(expected);
  }, 60_000);
});
