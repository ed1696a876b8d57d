import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient } from "../support/admin-client.js";
import { launchBrowser } from "../support/browser.js";
import { issueStaff } from "../support/console-client.js";
import { startStripeMock } from "../support/processes.js";
import { startSidecar, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliverMockSubscription, STRIPE_MOCK_CUSTOMER, STRIPE_MOCK_SUBSCRIPTION } from "../support/stripe-events.js";
import { testClock } from "../support/test-time.js";

// Finance staff reconcile a tenant in a real headless chromium against a
// real sidecar and stripe-mock: dry run, review, apply. On the test clock.
const clock = testClock();
let sidecar: TestSidecar;
let mock: { url: string; stop: () => void };
let browser: Browser;
let close = () => {};
let base: string;
let staff: Record<string, string> = {};

/** CONSOLE_SCREENSHOTS=docs/console regenerates the README's screenshots; a normal run writes nothing. */
const shot = async (page: Page, name: string) => {
  const dir = process.env.CONSOLE_SCREENSHOTS;
  if (dir) await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
};
const billingStatus = () => sidecar.bulkhead.db.prepare("SELECT billing_status FROM tenants WHERE id = 'ten_drift'").pluck().get();

beforeAll(async () => {
  mock = await startStripeMock();
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true, stripeApiKey: "sk_test_123", stripeApiUrl: mock.url } });
  base = `http://127.0.0.1:${sidecar.httpPort}`;
  sidecar.seed({
    tenants: [{ id: "ten_drift", slug: "drift", name: "Drift <i>Ltd</i>", planCode: "pro" }],
    billingCustomers: [{ customerId: STRIPE_MOCK_CUSTOMER, tenantId: "ten_drift" }],
    // stripe-mock's price has no lookup key; the catalog maps its price id.
    planLookupKeys: [{ lookupKey: "price_1PgafmB7WZ01zgkW6dKueIc5", planCode: "pro" }],
    usage: [{ tenantId: "ten_drift", meter: "exports.csv.monthly", used: 85 }],
  });
  const admin = adminClient(sidecar.grpcAddress);
  close = () => admin.client.close();
  staff = await issueStaff(admin.call, [["stf_fin", "finance"]]);
  expect(await deliverMockSubscription(sidecar.httpPort, TEST_WEBHOOK_SECRET, "evt_browser_past_due", "past_due", clock.now())).toBe("applied");
  browser = await launchBrowser();
}, 120_000);
afterAll(async () => {
  await browser?.close();
  close();
  mock?.stop();
  await sidecar?.close();
});

/** Finance signs in and selects ten_drift (with a reason): the page is its tenant page. */
async function financeOnTenantPage(): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}/console/login`);
  await page.fill('input[name="token"]', staff.stf_fin!);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}/console/tenants`);
  await page.goto(`${base}/console/tenants?q=ten_drift`);
  const row = page.locator("tr", { hasText: "ten_drift" });
  await row.locator('select[name="reason_code"]').selectOption("billing_correction");
  await row.locator('button:has-text("Select")').click();
  await page.waitForURL(`${base}/console/tenants/ten_drift`);
  return page;
}

// A browser step takes seconds on a shared two-core machine: a generous bound, not a speed assertion.
describe("console billing in a browser", { timeout: 90_000 }, () => {
  it("finance selects a tenant, dry-runs a reconcile, reviews the repairs and applies them with a reason", async () => {
    const page = await financeOnTenantPage();
    expect(await page.locator("#usage").textContent()).toContain("soft limit reached");
    expect(await page.locator("h1").textContent()).toBe("Tenant Drift <i>Ltd</i>");

    await page.click("#billing-actions");
    await page.waitForURL(`${base}/console/tenants/ten_drift/billing`);
    const dryRun = page.locator('form[action$="/reconcile/dry-run"]');
    await dryRun.locator('select[name="reason_code"]').selectOption("billing_correction");
    await dryRun.locator('input[name="reason_text"]').fill("ticket 42");
    await dryRun.locator('button:has-text("Dry run")').click();
    await page.waitForSelector("#dry-run");
    expect(await page.locator("#dry-run").textContent()).toContain(`${STRIPE_MOCK_SUBSCRIPTION}status"past_due""active"`);
    expect(billingStatus()).toBe("past_due");
    await shot(page, "billing");

    const apply = page.locator('form[action$="/reconcile/apply"]');
    await apply.locator('select[name="reason_code"]').selectOption("billing_correction");
    await apply.locator('button:has-text("Apply these repairs")').click();
    await page.waitForSelector("#billing-notice");
    expect(await page.locator("#billing-notice").textContent()).toContain("Reconciled: repaired 1 subscription(s)");
    expect(await page.locator("#dry-run").count()).toBe(0);
    expect(billingStatus()).toBe("active");
  });

  it("asks for a reason before a sensitive action: none chosen is stopped in the page and refused by the server; the action shows in the audit with it", async () => {
    const page = await financeOnTenantPage();
    await page.goto(`${base}/console/tenants/ten_drift/billing`);
    const recalculate = page.locator('form[action$="/recalculate"]');
    const audited = () => sidecar.bulkhead.db.prepare("SELECT count(*) FROM admin_audit WHERE action = 'billing.recalculate'").pluck().get() as number;
    const before = audited();

    // No reason chosen: the browser does not send the form.
    await recalculate.locator('button:has-text("Recalculate")').click();
    expect(await recalculate.locator('select[name="reason_code"]').evaluate((s) => (s as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).toBe(true);
    expect(page.url()).toBe(`${base}/console/tenants/ten_drift/billing`);
    // A page edited to drop that check: the server refuses it, and nothing is done.
    await recalculate.locator('select[name="reason_code"]').evaluate((s) => s.removeAttribute("required"));
    await Promise.all([page.waitForLoadState("load"), recalculate.locator('button:has-text("Recalculate")').click()]);
    expect(await page.textContent("body")).toMatch(/reason/i);
    expect(audited()).toBe(before);

    await page.goto(`${base}/console/tenants/ten_drift/billing`);
    await recalculate.locator('select[name="reason_code"]').selectOption("billing_correction");
    await recalculate.locator('input[name="reason_text"]').fill("ticket 77");
    await recalculate.locator('button:has-text("Recalculate")').click();
    await page.waitForSelector("#billing-notice");
    expect(audited()).toBe(before + 1);
    await page.goto(`${base}/console/audit`);
    const entry = page.locator("tr", { hasText: "billing.recalculate" }).first();
    expect(await entry.textContent()).toContain("billing_correction: ticket 77");
    expect(await entry.textContent()).toContain("console");
  });
});
