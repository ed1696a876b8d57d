import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, type AdminCall } from "../support/admin-client.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { MINUTE, testClock } from "../support/test-time.js";

// The console's Audit page and the tenant-scoped export over real HTTP
// against a real sidecar whose decision log was written by real Checks.
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
let staff: Record<string, string> = {};

const as = (who: string, select?: string) => signedIn(sidecar.httpPort, staff[who]!, select);
const exports = () => sidecar.bulkhead.db.prepare("SELECT actor, tenant_id, reason, source FROM admin_audit WHERE action = 'audit.export' ORDER BY id").all() as Record<string, string>[];

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  staff = await issueStaff(call, [["stf_agent", "support_agent"], ["stf_admin", "support_admin"], ["stf_eng", "engineer"]]);
  await sidecar.check(checkRequest("ten_acme", "usr_carol", "projects.read"));
  await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.read"));
  clock.advance(MINUTE);
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("console audit", () => {
  it("shows the selected tenant's admin audit to a support agent, with no export action; hand-made export GET and POST are refused", async () => {
    const agent = await as("stf_agent", "ten_acme");
    const page = await agent.get("/console/audit");
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<td>staff:stf_agent<\/td><td>tenant\.select<\/td><td>tenant:ten_acme<\/td><td>customer_request: ticket 7<\/td><td>console<\/td>/);
    expect(page.body).not.toMatch(/export/i);
    expect(page.body).not.toContain("Operator-wide");
    expect((await agent.get("/console/audit/export")).status).toBe(403);
    const byHand = await agent.post("/console/audit/export", { reason_code: "customer_request" });
    expect(byHand.status).toBe(403);
    expect(byHand.headers.get("content-disposition")).toBeNull();
    expect(byHand.body).not.toContain("usr_carol");
    expect(exports()).toEqual([]);
  });

  it("downloads the selected tenant's export as an attachment, audited with its reason, holding no other tenant's record", async () => {
    const admin = await as("stf_admin", "ten_acme");
    const page = await admin.get("/console/audit");
    expect(page.body).toContain('action="/console/audit/export"');
    const file = await admin.post("/console/audit/export", { reason_code: "customer_request", reason_text: "enterprise export 12" });
    expect(file.status).toBe(200);
    expect(file.headers.get("content-disposition")).toMatch(/^attachment; filename="audit-ten_acme-[0-9TZ-]+\.jsonl"$/);
    expect(file.headers.get("content-type")).toContain("application/x-ndjson");
    const lines = file.body.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.kind === "decision").map((l) => [l.tenant_id, l.actor_id])).toEqual([["ten_acme", "usr_carol"]]);
    expect(lines.every((l) => l.tenant_id === "ten_acme")).toBe(true);
    expect(file.body).not.toContain("ten_globex");
    // The agent's selection and this one, then this export itself (recorded before a line is read).
    expect(lines.filter((l) => l.kind === "admin_action").map((l) => [l.actor, l.action])).toEqual([
      ["staff:stf_agent", "tenant.select"], ["staff:stf_admin", "tenant.select"], ["staff:stf_admin", "audit.export"],
    ]);
    expect(exports()).toEqual([{ actor: "staff:stf_admin", tenant_id: "ten_acme", reason: "customer_request: enterprise export 12", source: "console" }]);
    expect((await admin.get("/console/audit")).body).toContain("<td>audit.export</td><td>audit:ten_acme</td><td>customer_request: enterprise export 12</td>");
  });

  it("refuses an export without CSRF, without a reason, or with no tenant selected, exporting nothing", async () => {
    const admin = await as("stf_admin", "ten_acme");
    const noCsrf = await admin.post("/console/audit/export", { reason_code: "customer_request" }, { csrf: false });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body).toContain("CONSOLE_CSRF");
    const noReason = await admin.post("/console/audit/export", {});
    expect(noReason.status).toBe(400);
    const none = await as("stf_eng");
    const unselected = await none.post("/console/audit/export", { reason_code: "customer_request" });
    expect(unselected.status).toBe(403);
    expect(unselected.headers.get("content-disposition")).toBeNull();
    expect(exports()).toHaveLength(1);
  });

  it("shows operator-wide actions (flags, approvals, staff) to audit.read, even with no tenant selected", async () => {
    const eng = await as("stf_eng");
    const page = await eng.get("/console/audit");
    expect(page.status).toBe(200);
    expect(page.body).toContain("Select a tenant");
    expect(page.body).toContain("<td>staff.put</td><td>staff:stf_eng</td><td>onboarding</td>");
  });
});
