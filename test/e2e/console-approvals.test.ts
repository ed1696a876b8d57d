import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Flag rollout changes and the two-person queue over real HTTP against a real
// sidecar: every write goes through FlagAdmin and AccessAdmin, as over
// AdminService; each guard attacked from the wrong role, without CSRF, by the requester.
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
let staff: Record<string, string> = {};

const as = (who: string) => signedIn(sidecar.httpPort, staff[who]!);
const rulesOf = (key: string) =>
  (sidecar.bulkhead.db.prepare("SELECT rule, params FROM flag_rules WHERE flag_key = ? ORDER BY position").all(key) as { rule: string; params: string }[])
    .map((r) => ({ rule: r.rule, params: JSON.parse(r.params) as Record<string, unknown> }));
const percentageOf = (key: string) => rulesOf(key).find((r) => r.rule === "percentage")?.params.percentage;
const auditOf = (action: string, object: string) =>
  sidecar.bulkhead.db.prepare("SELECT actor, reason, source FROM admin_audit WHERE action = ? AND object = ? ORDER BY id").all(action, object) as Record<string, string>[];
const flag = (key: string, risk: string, percentage: number) => JSON.stringify({
  key, kind: "release", owner: "team-pay", risk, description: "checkout v2", cleanupAt: "2027-03-31", rules: [{ rule: "percentage", params: { percentage } }],
});
const approvalIdIn = (location: string | null) => /#(apr_[A-Za-z0-9]+)$/.exec(location ?? "")?.[1] ?? "";

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  staff = await issueStaff(call, [["stf_eng", "engineer"], ["stf_eng2", "engineer"], ["stf_agent", "support_agent"], ["stf_fin", "finance"]]);
  await call("putFlag", { flagJson: flag("beta_low", "low", 10), reason: "maintenance: console test" }, adminAuth(staff.stf_eng!));
  await call("putFlag", { flagJson: flag("risky_checkout", "high", 10), reason: "maintenance: console test" }, adminAuth(staff.stf_eng!));
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("console flag rollouts", () => {
  it("an engineer changes a rollout with a reason; it is stored and appears in the audit page with the reason", async () => {
    const eng = await as("stf_eng");
    const form = await eng.get("/console/flags/beta_low");
    expect(form.status).toBe(200);
    expect(form.body).toContain('name="percentage" type="number" min="0" max="100" value="10"');
    const changed = await eng.post("/console/flags/beta_low/rollout", {
      percentage: "40", tenants_allow: "ten_acme", tenants_deny: "ten_globex, ten_initech", plans: "pro enterprise",
      reason_code: "maintenance", reason_text: "ramp to 40",
    });
    expect(changed.status).toBe(303);
    expect(rulesOf("beta_low")).toEqual([
      { rule: "tenants_deny", params: { tenants: ["ten_globex", "ten_initech"] } },
      { rule: "tenants_allow", params: { tenants: ["ten_acme"] } },
      { rule: "plans", params: { plans: ["pro", "enterprise"] } },
      { rule: "percentage", params: { percentage: 40, bucketing: 1, stickiness: "tenant" } },
    ]);
    expect(auditOf("flag.put", "flag:beta_low").at(-1)).toEqual({ actor: "staff:stf_eng", reason: "maintenance: ramp to 40", source: "console" });
    const audit = await eng.get("/console/audit");
    expect(audit.status).toBe(200);
    expect(audit.body).toMatch(/<td>staff:stf_eng<\/td><td>flag\.put<\/td><td>flag:beta_low<\/td><td>maintenance: ramp to 40<\/td><td>console<\/td>/);
    expect((await eng.get("/console/flags")).body).toContain("percentage: 40%");
  });

  it("refuses a rollout change without the CSRF token, without a reason, or from a role without flags.write", async () => {
    const eng = await as("stf_eng");
    await eng.get("/console/flags/beta_low");
    const before = rulesOf("beta_low");
    const noCsrf = await eng.post("/console/flags/beta_low/rollout", { percentage: "90", reason_code: "maintenance" }, { csrf: false });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body).toContain("CONSOLE_CSRF");
    const noReason = await eng.post("/console/flags/beta_low/rollout", { percentage: "90" });
    expect(noReason.status).toBe(400);
    expect(noReason.body).toContain("reason");
    const badShare = await eng.post("/console/flags/beta_low/rollout", { percentage: "140", reason_code: "maintenance" });
    expect(badShare.status).toBe(400);
    expect(badShare.body).toContain("flag.rules[0].params.percentage");
    for (const who of ["stf_agent", "stf_fin"]) {
      const c = await as(who);
      expect((await c.get("/console/flags/beta_low")).status).toBe(403);
      const byHand = await c.post("/console/flags/beta_low/rollout", { percentage: "90", reason_code: "maintenance" });
      expect(byHand.status).toBe(403);
      expect(byHand.body).toContain("ADMIN_FORBIDDEN");
    }
    expect(rulesOf("beta_low")).toEqual(before);
  });

  it("refuses a high-risk flag to 100% without an approval, says how to get one and offers to request it", async () => {
    const eng = await as("stf_eng");
    const refused = await eng.post("/console/flags/risky_checkout/rollout", { percentage: "100", reason_code: "maintenance", reason_text: "full rollout" });
    expect(refused.status).toBe(412);
    expect(refused.body).toContain("APPROVAL_REQUIRED");
    expect(refused.body).toContain("How to get this rollout approved");
    expect(refused.body).toContain("percentage: 100%");
    expect(refused.body).toContain('action="/console/flags/risky_checkout/rollout/approval"');
    expect(refused.body).toContain('<input type="hidden" name="percentage" value="100">');
    expect(percentageOf("risky_checkout")).toBe(10);
    expect(auditOf("flag.put", "flag:risky_checkout")).toHaveLength(1);
  });
});

describe("console approvals", () => {
  let approvalId = "";

  it("requests the approval from the refusal; the queue shows every field of the content before the Approve button", async () => {
    const eng = await as("stf_eng");
    const requested = await eng.post("/console/flags/risky_checkout/rollout/approval", { percentage: "100", reason_code: "maintenance", reason_text: "full rollout" });
    expect(requested.status).toBe(303);
    approvalId = approvalIdIn(requested.location);
    expect(approvalId).not.toBe("");
    const page = await (await as("stf_eng2")).get("/console/approvals");
    expect(page.status).toBe(200);
    const section = page.body.slice(page.body.indexOf(`<section class="approval" id="${approvalId}">`));
    const approveAt = section.indexOf(`action="/console/approvals/${approvalId}/approve"`);
    expect(approveAt).toBeGreaterThan(0);
    const shown = section.slice(0, approveAt);
    for (const field of [
      "<code>flag.put</code> on <code>risky_checkout</code>", "<td>staff:stf_eng</td>", "<td>maintenance: full rollout</td>",
      "<th>key</th><td><code>&quot;risky_checkout&quot;</code>", "<th>kind</th>", "<th>owner</th>", "<th>risk</th><td><code>&quot;high&quot;</code>",
      "<th>description</th>", "<th>enabled</th>", "<th>environments</th>", "<th>cleanupAt</th>", "<th>variants</th>",
      "<th>percentage</th><td><code>100</code>", "<th>bucketing</th>", "<th>stickiness</th>",
    ]) {
      expect(shown).toContain(field);
    }
    expect(shown).toContain("Rules of risky_checkout now: percentage: 10%");
    const approval = await call<{ expiresAt: string; contentJson: string }>("getApproval", { approvalId }, adminAuth(staff.stf_eng2!));
    expect(shown).toContain(`<td>${approval.expiresAt} (in 30 min)</td>`);
    expect(shown).toContain(approval.contentJson.replaceAll('"', "&quot;"));
  });

  it("refuses approving one's own request: no button, and a hand-made POST is refused by AccessAdmin", async () => {
    const eng = await as("stf_eng");
    const page = await eng.get("/console/approvals");
    expect(page.body).not.toContain(`action="/console/approvals/${approvalId}/approve"`);
    expect(page.body).toContain("you cannot approve your own");
    const byHand = await eng.post(`/console/approvals/${approvalId}/approve`, { reason_code: "maintenance" });
    expect(byHand.status).toBe(412);
    expect(byHand.body).toContain("the approver must be a different person from the requester");
    expect((await call<{ approvedBy: string }>("getApproval", { approvalId }, adminAuth(staff.stf_eng2!))).approvedBy).toBe("");
  });

  it("refuses the queue to a role without approvals, and an approval without CSRF", async () => {
    const agent = await as("stf_agent");
    expect((await agent.get("/console/tenants")).body).not.toContain('href="/console/approvals"');
    expect((await agent.get("/console/approvals")).status).toBe(403);
    expect((await agent.post(`/console/approvals/${approvalId}/approve`, { reason_code: "maintenance" })).status).toBe(403);
    const eng2 = await as("stf_eng2");
    expect((await eng2.post(`/console/approvals/${approvalId}/approve`, { reason_code: "maintenance" }, { csrf: false })).status).toBe(403);
    expect((await call<{ approvedBy: string }>("getApproval", { approvalId }, adminAuth(staff.stf_eng2!))).approvedBy).toBe("");
  });

  it("a second engineer approves; the requester applies exactly that rollout, once", async () => {
    const eng2 = await as("stf_eng2");
    await eng2.get("/console/approvals");
    const approved = await eng2.post(`/console/approvals/${approvalId}/approve`, { reason_code: "maintenance", reason_text: "read it" });
    expect(approved.status).toBe(303);
    expect(auditOf("approval.approve", `approval:${approvalId}`)).toEqual([{ actor: "staff:stf_eng2", reason: "maintenance: read it", source: "console" }]);
    const eng = await as("stf_eng");
    const queue = await eng.get("/console/approvals");
    expect(queue.body).toContain(`href="/console/flags/risky_checkout?approval_id=${approvalId}"`);
    const prefilled = await eng.get(`/console/flags/risky_checkout?approval_id=${approvalId}`);
    expect(prefilled.body).toContain('name="percentage" type="number" min="0" max="100" value="100"');
    // Approved for 100% to everyone, not for 100% of the pro plan: other content needs another approval.
    const other = await eng.post("/console/flags/risky_checkout/rollout", { percentage: "100", plans: "pro", approval_id: approvalId, reason_code: "maintenance" });
    expect(other.status).toBe(412);
    expect(other.body).toContain("the change differs from what was approved");
    const applied = await eng.post("/console/flags/risky_checkout/rollout", { percentage: "100", approval_id: approvalId, reason_code: "maintenance", reason_text: "approved" });
    expect(applied.status).toBe(303);
    expect(percentageOf("risky_checkout")).toBe(100);
    expect((await eng.get("/console/approvals")).body).not.toContain(`id="${approvalId}"`);
  });
});
