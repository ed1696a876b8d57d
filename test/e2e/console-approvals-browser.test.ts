import { readFile } from "node:fs/promises";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { launchBrowser } from "../support/browser.js";
import { issueStaff } from "../support/console-client.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Two engineers in a real headless chromium against a real sidecar: a
// high-risk rollout is refused, requested, read in full and approved by the
// other, then applied; a support admin downloads a tenant's audit export.
const clock = testClock();
let sidecar: TestSidecar;
let browser: Browser;
let call: AdminCall;
let closeAdmin: () => void;
let base: string;
let staff: Record<string, string> = {};

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
  staff = await issueStaff(call, [["stf_eng", "engineer"], ["stf_eng2", "engineer"], ["stf_admin", "support_admin"]]);
  const flagJson = JSON.stringify({
    key: "risky_checkout", kind: "release", owner: "team-pay", risk: "high", description: "checkout v2", cleanupAt: "2027-03-31",
    rules: [{ rule: "percentage", params: { percentage: 10 } }],
  });
  await call("putFlag", { flagJson, reason: "maintenance: browser test" }, adminAuth(staff.stf_eng!));
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  closeAdmin();
  await sidecar.close();
});

async function signIn(who: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  await page.fill('input[name="token"]', staff[who]!);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}/console/tenants`);
  return { context, page };
}

describe("console approvals in a browser", { timeout: 90_000 }, () => {
  it("refuses a high-risk flag to 100%, requests the approval, shows it in full to a second engineer before Approve, then applies it", async () => {
    const a = await signIn("stf_eng");
    await a.page.goto(`${base}/console/flags`);
    await a.page.locator("tr", { hasText: "risky_checkout" }).locator('a:has-text("Change rollout")').click();
    await a.page.fill('input[name="percentage"]', "100");
    await a.page.locator('select[name="reason_code"]').last().selectOption("maintenance");
    await a.page.click('button:has-text("Change rollout")');
    expect(await a.page.locator("h1").textContent()).toBe("Refused");
    expect(await a.page.textContent(".error")).toContain("APPROVAL_REQUIRED");
    expect(await a.page.textContent("main")).toContain("How to get this rollout approved");
    const request = a.page.locator('form[action$="/rollout/approval"]');
    await request.locator('select[name="reason_code"]').selectOption("maintenance");
    await request.locator('input[name="reason_text"]').fill("full rollout");
    await a.page.click('button:has-text("Request approval")');
    await a.page.waitForURL(/\/console\/approvals#apr_/);
    const approvalId = new URL(a.page.url()).hash.slice(1);

    const b = await signIn("stf_eng2");
    await b.page.goto(`${base}/console/approvals`);
    const section = b.page.locator(`section[id="${approvalId}"]`);
    const text = (await section.textContent())!;
    for (const shown of ["flag.put on risky_checkout", "staff:stf_eng", "maintenance: full rollout", "Expires", "risky_checkout", "percentage", "100", "team-pay", "high", "2027-03-31T00:00:00.000Z"]) {
      expect(text).toContain(shown);
    }
    const content = await section.locator("table.content").first().boundingBox();
    const approve = await section.locator('button:has-text("Approve")').boundingBox();
    expect(content!.y + content!.height).toBeLessThanOrEqual(approve!.y);
    await shot(b.page, "approvals");
    await section.locator('select[name="reason_code"]').selectOption("maintenance");
    await section.locator('button:has-text("Approve")').click();
    await b.page.waitForURL(`${base}/console/approvals#${approvalId}`);
    expect(await b.page.locator(`section[id="${approvalId}"]`).textContent()).toContain("approved by staff:stf_eng2");

    await a.page.goto(`${base}/console/approvals`);
    await a.page.click('a:has-text("Apply this rollout")');
    expect(await a.page.inputValue('input[name="percentage"]')).toBe("100");
    expect(await a.page.inputValue('input[name="approval_id"]')).toBe(approvalId);
    await a.page.locator('select[name="reason_code"]').last().selectOption("maintenance");
    await a.page.click('button:has-text("Change rollout")');
    await a.page.waitForURL(`${base}/console/flags`);
    expect(await a.page.locator("tr", { hasText: "risky_checkout" }).textContent()).toContain("percentage: 100%");
    await a.context.close();
    await b.context.close();
  });

  it("a support admin downloads the selected tenant's audit export as a file", async () => {
    const { context, page } = await signIn("stf_admin");
    await page.goto(`${base}/console/tenants?q=ten_acme`);
    const row = page.locator("tr", { hasText: "ten_acme" });
    await row.locator('select[name="reason_code"]').selectOption("customer_request");
    await row.locator('button:has-text("Select")').click();
    await page.waitForURL(`${base}/console/tenants/ten_acme`);
    await page.goto(`${base}/console/audit`);
    const exportForm = page.locator('form[action="/console/audit/export"]');
    await exportForm.locator('select[name="reason_code"]').selectOption("customer_request");
    await exportForm.locator('input[name="reason_text"]').fill("enterprise export 12");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click('button:has-text("Download export")')]);
    expect(download.suggestedFilename()).toMatch(/^audit-ten_acme-[0-9TZ-]+\.jsonl$/);
    const lines = (await readFile((await download.path())!, "utf8")).trimEnd().split("\n").map((l) => JSON.parse(l) as { tenant_id: string; action?: string });
    expect(lines.every((l) => l.tenant_id === "ten_acme")).toBe(true);
    expect(lines.at(-1)!.action).toBe("audit.export");
    await context.close();
  });
});
