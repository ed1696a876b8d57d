import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, type AdminCall } from "../support/admin-client.js";
import { launchBrowser } from "../support/browser.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { HOUR, MINUTE, testClock } from "../support/test-time.js";

// The console in a real headless chromium against a real sidecar, as a
// support agent uses it. The sidecar runs on the test clock, so expiry is a
// clock move, never a wait.
const clock = testClock();
let sidecar: TestSidecar;
let browser: Browser;
let call: AdminCall;
let closeAdmin: () => void;
let base: string;
const staff: Record<string, string> = {};

/** CONSOLE_SCREENSHOTS=docs/console regenerates the README's screenshots; a normal run writes nothing. */
const shot = async (page: Page, name: string) => {
  const dir = process.env.CONSOLE_SCREENSHOTS;
  if (dir) await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
};

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true } });
  base = `http://127.0.0.1:${sidecar.httpPort}`;
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  closeAdmin = () => admin.client.close();
  staff.agent = (await call<{ token: string }>("putStaff", { staffId: "stf_agent", name: "Agent", role: "support_agent", reason: "onboarding" })).token;
  staff.engineer = (await call<{ token: string }>("putStaff", { staffId: "stf_eng", name: "Engineer", role: "engineer", reason: "onboarding" })).token;
  await call("putTenant", { tenantId: "ten_markup", slug: "markup", name: "<script>alert(1)</script>", status: "active", planCode: "free", billingStatus: "active", reason: "onboarding" });
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  closeAdmin();
  await sidecar.close();
});

async function signIn(context: BrowserContext, token = staff.agent!): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  await shot(page, "login");
  await page.fill('input[name="token"]', token);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}/console/tenants`);
  return page;
}

async function select(page: Page, tenantId: string): Promise<void> {
  await page.goto(`${base}/console/tenants?q=${tenantId}`);
  const row = page.locator("tr", { hasText: tenantId });
  await row.locator('select[name="reason_code"]').selectOption("customer_request");
  await row.locator('input[name="reason_text"]').fill("ticket 7");
  await row.locator('button:has-text("Select")').click();
  await page.waitForURL(`${base}/console/tenants/${tenantId}`);
}

// A browser step takes seconds on a shared two-core machine: a generous bound, not a speed assertion.
describe("console in a browser", { timeout: 90_000 }, () => {
  it("a support agent signs in, searches, selects a tenant and sees no billing or export action; posting them by hand is refused", async () => {
    const context = await browser.newContext();
    const page = await signIn(context);
    await page.fill('input[name="q"]', "acme");
    await page.click('button:has-text("Search")');
    expect(await page.locator("tbody tr").count()).toBe(1);
    await shot(page, "tenant-search");
    await select(page, "ten_acme");
    expect(await page.locator("h1").textContent()).toContain("Acme");
    await shot(page, "tenant");
    // The actions on offer (buttons and links): the page's data names entitlements like exports.csv.
    const actions = (await page.locator("button, a").allTextContents()).join(" ");
    expect(actions).not.toMatch(/export|reconcile|replay|recalculate|billing/i);
    expect(await page.locator('form[action*="billing"], form[action*="export"]').count()).toBe(0);
    // The role's limits are on the page, not learnt from a refusal.
    const limits = (await page.locator("#role-limits").textContent())!;
    expect(limits).toContain("support_agent");
    expect(limits).toMatch(/May: tenants\.read, impersonate\./);
    expect(limits).toMatch(/May not: .*billing\.write.*audit\.read/);
    // The same session (its cookie, its CSRF token) posting what the page does not offer.
    const csrf = (await page.locator('input[name="csrf"]').first().getAttribute("value"))!;
    for (const path of ["/console/tenants/ten_acme/billing/reconcile/dry-run", "/console/tenants/ten_acme/billing/recalculate", "/console/audit/export"]) {
      const refused = await context.request.post(`${base}${path}`, { form: { csrf, reason_code: "customer_request" }, maxRedirects: 0 });
      expect(refused.status()).toBeGreaterThanOrEqual(400);
    }
    await context.close();
  });

  it("refuses a form posted without the CSRF token", async () => {
    const context = await browser.newContext();
    await signIn(context);
    const refused = await context.request.post(`${base}/console/tenants/ten_acme/select`, { form: { reason_code: "customer_request" }, maxRedirects: 0 });
    expect(refused.status()).toBe(403);
    expect(await refused.text()).toContain("CONSOLE_CSRF");
    await context.close();
  });

  it("shows a tenant named with markup as text, running nothing", async () => {
    const context = await browser.newContext();
    const page = await signIn(context);
    const dialogs: string[] = [];
    page.on("dialog", (d) => void dialogs.push(d.message()));
    await select(page, "ten_markup");
    expect(await page.locator("h1").textContent()).toBe("Tenant <script>alert(1)</script>");
    expect(await page.locator("main script").count()).toBe(0);
    expect(dialogs).toEqual([]);
    await context.close();
  });

  it("never shows an unselected tenant's data", async () => {
    const context = await browser.newContext();
    const page = await signIn(context);
    await select(page, "ten_acme");
    const other = await page.goto(`${base}/console/tenants/ten_globex`);
    expect(other!.status()).toBe(403);
    expect(await page.textContent("body")).not.toContain("Globex");
    await context.close();
  });

  it("shows the impersonation banner on every page, and ends it at expiry", async () => {
    const context = await browser.newContext();
    const page = await signIn(context);
    await select(page, "ten_acme");
    const form = page.locator('form[action$="/impersonate"]');
    await form.locator('input[name="ttl_minutes"]').fill("5");
    await form.locator('select[name="reason_code"]').selectOption("customer_request");
    await form.locator('button:has-text("Start impersonation")').click();
    const asActor = (await form.locator('select[name="as_actor_id"]').inputValue())!;
    for (const path of ["/console/tenants", "/console/tenants/ten_acme", "/console/tenants?q=glo"]) {
      await page.goto(`${base}${path}`);
      const banner = page.locator("#impersonation-banner");
      expect(await banner.isVisible()).toBe(true);
      expect(await banner.textContent()).toContain(asActor);
      expect(await banner.textContent()).toContain("staff:stf_agent");
      expect(await banner.textContent()).toContain("5 min 0 s left");
    }
    await shot(page, "impersonation");
    clock.advance(5 * MINUTE);
    await page.goto(`${base}/console/tenants`);
    expect(await page.locator("#impersonation-banner").count()).toBe(0);
    expect(await page.textContent(".notice")).toContain("(it expired)");
    await context.close();
  });

  it("stops access after signing out and after the session expires", async () => {
    const context = await browser.newContext();
    const page = await signIn(context);
    await page.click('button:has-text("Sign out")');
    await page.waitForURL(/\/console\/login\?out=1$/);
    await page.goto(`${base}/console/tenants`);
    expect(page.url()).toBe(`${base}/console/login`);

    const later = await signIn(await browser.newContext());
    clock.advance(8 * HOUR);
    await later.goto(`${base}/console/tenants`);
    expect(later.url()).toBe(`${base}/console/login?expired=1`);
    expect(await later.textContent(".notice")).toContain("expired");
    await context.close();
  });

  it("explains a Check in the playground: a deny with its reasons and revisions; the support agent has no playground", async () => {
    const context = await browser.newContext();
    const page = await signIn(context, staff.engineer!);
    await select(page, "ten_acme");
    await page.click('a[href="/console/playground"]');
    await page.fill('input[name="actor_id"]', "usr_bob");
    await page.fill('input[name="action"]', "projects.delete");
    await page.fill('input[name="resource_type"]', "projects");
    await page.fill('input[name="resource_id"]', "prj_7");
    await page.fill('input[name="resource_tenant_id"]', "ten_globex");
    await page.click('button:has-text("Explain")');
    await page.waitForURL(`${base}/console/playground`);
    expect(await page.textContent("#result")).toBe("deny");
    expect(await page.locator("#reasons li").count()).toBeGreaterThan(0);
    expect(await page.textContent("#reasons")).toContain("wrong_tenant");
    expect(await page.textContent("#policy-revision")).toBe(sidecar.bulkhead.policies.policy.revision);
    await shot(page, "playground");
    const agent = await signIn(await browser.newContext());
    expect(await agent.locator('a[href="/console/playground"]').count()).toBe(0);
    expect((await agent.goto(`${base}/console/playground`))!.status()).toBe(403);
    await context.close();
  });
});
