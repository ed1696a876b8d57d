import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../../src/log/logger.js";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { MINUTE, testClock } from "../support/test-time.js";

// Break-glass (issue 20, ADR 54) against a real sidecar: AdminService over
// real gRPC, the console over real HTTP. A grant lets exactly one change
// through once, for its opener only, before it expires; everything else is
// refused and writes nothing; open, use and expiry are each in the trail.
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
let staff: Record<string, string> = {};
const warnings: string[] = [];

const as = (who: string) => adminAuth(staff[who]!, "");
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e: ServiceError) => e);
const db = () => sidecar.bulkhead.db;
const grantCount = () => db().prepare("SELECT COUNT(*) FROM approvals WHERE break_glass = 1").pluck().get() as number;
const trailRows = () => db().prepare("SELECT actor, action, object, reason, source FROM admin_audit WHERE action LIKE 'break_glass.%' ORDER BY id").all() as Record<string, string>[];
const carol = (displayName: string) => ({ userId: "usr_carol", email: "carol@globex.example", displayName });
const putCarol = (displayName: string, approvalId: string, who: string) =>
  call("putUser", { tenantId: "ten_acme", ...carol(displayName), allTenants: true, approvalId, reason: "incident: shared profile" }, as(who));
const displayName = () => sidecar.bulkhead.stores.directory.user("usr_carol")!.displayName;
/** A high-risk flag at 100%: an engineer holds flags.write for it, so only break_glass stands between them and a grant. */
const FLAG = JSON.stringify({ key: "bg_flag", kind: "release", owner: "team-pay", risk: "high", description: "checkout", cleanupAt: "2027-03-31", rules: [{ rule: "percentage", params: { percentage: 100 } }] });
const JUSTIFICATION = "SSO outage: carol locked out of every tenant, nobody else on call";

/** A logger that keeps the warn lines, to see the trail's log line. */
const capturing: Logger = {
  error: () => {}, info: () => {}, debug: () => {}, isLevelEnabled: () => false, child: () => capturing,
  warn: (_fields, message) => void warnings.push(message),
};

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock, logger: capturing }, config: { console: true } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  staff = await issueStaff(call, [["stf_admin", "support_admin"], ["stf_admin2", "support_admin"], ["stf_eng", "engineer"], ["stf_agent", "support_agent"], ["stf_fin", "finance"]]);
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("BreakGlass over AdminService", () => {
  it("is refused for every role without break_glass, for the bootstrap credential, and without a reason or justification; nothing is written", async () => {
    const before = { grants: grantCount(), trail: trailRows().length };
    const request = { putUser: carol("Carol X"), reason: "incident", justification: JUSTIFICATION };
    for (const who of ["stf_eng", "stf_agent", "stf_fin"]) {
      const refused = await failure(call("breakGlass", request, as(who)));
      expect(refused.code, who).toBe(status.PERMISSION_DENIED);
      expect(refused.details).toContain("break_glass");
    }
    const engineerFlag = await failure(call("breakGlass", { putFlag: { flagJson: FLAG }, reason: "incident", justification: JUSTIFICATION }, as("stf_eng")));
    expect(engineerFlag.code).toBe(status.PERMISSION_DENIED);
    expect(engineerFlag.details).toContain("break_glass");
    // The bootstrap token holds every capability but is no person: break-glass needs a name.
    expect((await failure(call("breakGlass", request))).code).toBe(status.PERMISSION_DENIED);
    const noReason = await failure(call("breakGlass", { ...request, reason: "" }, as("stf_admin")));
    expect(noReason.code).toBe(status.INVALID_ARGUMENT);
    expect(noReason.details).toContain("reason");
    const noJustification = await failure(call("breakGlass", { ...request, justification: " " }, as("stf_admin")));
    expect(noJustification.code).toBe(status.INVALID_ARGUMENT);
    expect(noJustification.details).toContain("justification");
    const tooLong = await failure(call("breakGlass", { ...request, ttlSeconds: 16 * 60 }, as("stf_admin")));
    expect(tooLong.details).toContain("ttl_seconds");
    // support_admin may break glass only for writes it may make: not the plan catalog.
    const plan = await failure(call("breakGlass", { putPlan: { planCode: "pro", name: "Pro" }, reason: "incident", justification: JUSTIFICATION }, as("stf_admin")));
    expect(plan.code).toBe(status.PERMISSION_DENIED);
    expect(plan.details).toContain("plans.write");
    expect({ grants: grantCount(), trail: trailRows().length }).toEqual(before);
  });

  it("lets exactly that change through once, for its opener only: another content, another staff member and a second use are refused", async () => {
    const grant = await call<{ approvalId: string; approvedBy: string; breakGlass: boolean; expiresAt: string }>(
      "breakGlass", { putUser: carol("Carol (restored)"), reason: "incident: INC-42", justification: JUSTIFICATION }, as("stf_admin"));
    expect(grant.breakGlass).toBe(true);
    expect(grant.approvedBy).toBe("staff:stf_admin");
    expect(Date.parse(grant.expiresAt) - clock.now()).toBe(15 * MINUTE);
    // Not in the two-person queue, and nobody can "approve" it.
    expect(sidecar.bulkhead.db.prepare("SELECT COUNT(*) FROM approvals WHERE break_glass = 0 AND id = ?").pluck().get(grant.approvalId)).toBe(0);
    expect((await failure(call("approve", { approvalId: grant.approvalId, reason: "incident" }, as("stf_admin2")))).code).toBe(status.FAILED_PRECONDITION);

    const other = await failure(putCarol("Carol (something else)", grant.approvalId, "stf_admin"));
    expect(other.code).toBe(status.FAILED_PRECONDITION);
    expect(other.details).toContain("differs from what was approved");
    const someoneElse = await failure(putCarol("Carol (restored)", grant.approvalId, "stf_admin2"));
    expect(someoneElse.code).toBe(status.FAILED_PRECONDITION);
    expect(someoneElse.details).toContain("opened by someone else");
    expect(displayName()).toBe("Carol");

    await putCarol("Carol (restored)", grant.approvalId, "stf_admin");
    expect(displayName()).toBe("Carol (restored)");
    const again = await failure(putCarol("Carol (restored again)", grant.approvalId, "stf_admin"));
    expect(again.details).toContain("already used");

    const trail = trailRows().filter((r) => r.object === `break_glass:${grant.approvalId}`);
    expect(trail).toEqual([
      { actor: "staff:stf_admin", action: "break_glass.open", object: `break_glass:${grant.approvalId}`, reason: "incident: INC-42", source: "admin_api" },
      { actor: "staff:stf_admin", action: "break_glass.used", object: `break_glass:${grant.approvalId}`, reason: "incident: INC-42", source: "break_glass" },
    ]);
    expect(warnings.filter((w) => w.includes(grant.approvalId))).toEqual([
      expect.stringMatching(/^break-glass open: staff:stf_admin opened apr_/),
      expect.stringMatching(/^break-glass used: staff:stf_admin used apr_/),
    ]);
    const listed = await call<{ grants: { grant: { approvalId: string }; status: string; justification: string; usedAt: string }[] }>("listBreakGlass", {}, as("stf_admin"));
    const mine = listed.grants.find((g) => g.grant.approvalId === grant.approvalId)!;
    expect(mine).toMatchObject({ status: "used", justification: JUSTIFICATION, usedAt: new Date(clock.now()).toISOString() });
    // An engineer reads audits (audit.read) but a support agent does not.
    expect((await call<{ grants: unknown[] }>("listBreakGlass", {}, as("stf_eng"))).grants.length).toBeGreaterThan(0);
    expect((await failure(call("listBreakGlass", {}, as("stf_agent")))).code).toBe(status.PERMISSION_DENIED);
  });

  it("expires unused: refused after its TTL, then recorded as break_glass.expired once", async () => {
    const grant = await call<{ approvalId: string }>("breakGlass", { putUser: carol("Carol (late)"), reason: "incident", justification: JUSTIFICATION, ttlSeconds: 300 }, as("stf_admin"));
    clock.advance(5 * MINUTE);
    const late = await failure(putCarol("Carol (late)", grant.approvalId, "stf_admin"));
    expect(late.details).toContain("has expired");
    expect(displayName()).toBe("Carol (restored)");
    await sidecar.bulkhead.expireBreakGlass();
    await sidecar.bulkhead.expireBreakGlass();
    const expired = trailRows().filter((r) => r.object === `break_glass:${grant.approvalId}` && r.action === "break_glass.expired");
    expect(expired).toEqual([{ actor: "system:break_glass", action: "break_glass.expired", object: `break_glass:${grant.approvalId}`, reason: "break_glass_expiry", source: "sweeper" }]);
    // Opening the next grant records a lapsed one first, sweep or no sweep.
    const lapsed = await call<{ approvalId: string }>("breakGlass", { putUser: carol("Carol (lapsed)"), reason: "incident", justification: JUSTIFICATION, ttlSeconds: 60 }, as("stf_admin"));
    clock.advance(2 * MINUTE);
    const next = await call<{ approvalId: string }>("breakGlass", { putUser: carol("Carol (next)"), reason: "incident", justification: JUSTIFICATION }, as("stf_admin2"));
    expect(trailRows().slice(-2).map((r) => [r.action, r.object])).toEqual([
      ["break_glass.expired", `break_glass:${lapsed.approvalId}`],
      ["break_glass.open", `break_glass:${next.approvalId}`],
    ]);
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^bulkhead_break_glass_total\{event="open"\} 4$/m);
    expect(metrics).toMatch(/^bulkhead_break_glass_total\{event="used"\} 1$/m);
    expect(metrics).toMatch(/^bulkhead_break_glass_total\{event="expired"\} 2$/m);
  });
});

describe("break-glass in the console", () => {
  it("staff without break_glass see neither the form nor the log, and a hand-made POST is refused (403) with nothing written", async () => {
    const before = { grants: grantCount(), trail: trailRows().length };
    const eng = await signedIn(sidecar.httpPort, staff.stf_eng!);
    const page = await eng.get("/console/approvals");
    expect(page.status).toBe(200);
    expect(page.body).not.toContain("Break glass");
    expect(page.body).not.toContain("Break-glass log");
    // The engineer may write flags, so a flag.put grant is refused only for want of break_glass.
    const engFlag = await eng.post("/console/approvals/break-glass", { operation: "flag.put", object: "bg_flag", content: FLAG, reason_code: "incident", justification: JUSTIFICATION });
    expect(engFlag.status).toBe(403);
    expect(engFlag.body).toContain("break_glass");
    for (const who of ["stf_eng", "stf_agent", "stf_fin"]) {
      const c = await signedIn(sidecar.httpPort, staff[who]!);
      await c.get("/console/tenants");
      const posted = await c.post("/console/approvals/break-glass", {
        operation: "user.put", object: "usr_carol", content: JSON.stringify({ id: "usr_carol", email: "carol@globex.example", displayName: "Carol Y" }),
        reason_code: "incident", justification: JUSTIFICATION,
      });
      expect(posted.status, who).toBe(403);
    }
    expect({ grants: grantCount(), trail: trailRows().length }).toEqual(before);
  });

  it("a support admin breaks glass with a reason and justification, uses it once, and the log shows who, what, when, why and that it was used", async () => {
    const admin = await signedIn(sidecar.httpPort, staff.stf_admin!);
    const page = await admin.get("/console/approvals");
    expect(page.body).toContain("<h2>Break glass</h2>");
    expect(page.body).toContain("Emergency only.");
    const content = JSON.stringify({ id: "usr_carol", email: "carol@globex.example", displayName: "Carol (console)" });
    const before = grantCount();
    const noJustification = await admin.post("/console/approvals/break-glass", { operation: "user.put", object: "usr_carol", content, reason_code: "incident" });
    expect(noJustification.status).toBe(400);
    expect(noJustification.body).toContain("justification");
    const noReason = await admin.post("/console/approvals/break-glass", { operation: "user.put", object: "usr_carol", content, justification: JUSTIFICATION });
    expect(noReason.status).toBe(400);
    const noCsrf = await admin.post("/console/approvals/break-glass", { operation: "user.put", object: "usr_carol", content, reason_code: "incident", justification: JUSTIFICATION }, { csrf: false });
    expect(noCsrf.status).toBe(403);
    const wrongObject = await admin.post("/console/approvals/break-glass", { operation: "user.put", object: "usr_dave", content, reason_code: "incident", justification: JUSTIFICATION });
    expect(wrongObject.status).toBe(400);
    expect(grantCount()).toBe(before);

    const opened = await admin.post("/console/approvals/break-glass", {
      operation: "user.put", object: "usr_carol", content, reason_code: "incident", reason_text: "INC-43", justification: JUSTIFICATION, ttl_minutes: "10",
    });
    expect(opened.status).toBe(303);
    const id = /#(apr_[A-Za-z0-9]+)$/.exec(opened.location ?? "")?.[1] ?? "";
    expect(id).not.toBe("");
    const openedAt = new Date(clock.now()).toISOString();
    const log = (await admin.get("/console/approvals")).body;
    const row = new RegExp(`<tr id="${id}"><td>${id}</td><td>staff:stf_admin</td><td><code>user.put</code> on <code>usr_carol</code></td>\\s*<td>${openedAt}</td><td>[^<]+</td><td>incident: INC-43</td><td>${JUSTIFICATION}</td><td>open</td><td></td>`);
    expect(log).toMatch(row);
    // The queue is for two-person requests: the grant is not offered for approval.
    expect(log).not.toContain(`<section class="approval" id="${id}"`);

    clock.advance(MINUTE);
    await putCarol("Carol (console)", id, "stf_admin");
    const after = (await admin.get("/console/approvals")).body;
    expect(after).toContain(`<td>${JUSTIFICATION}</td><td>used</td><td>${new Date(clock.now()).toISOString()}</td>`);
    expect(after).toMatch(new RegExp(`<td>staff:stf_admin</td><td>break_glass.open</td><td>break_glass:${id}</td><td>incident: INC-43</td><td>console</td>`));
    expect(after).toMatch(new RegExp(`<td>staff:stf_admin</td><td>break_glass.used</td><td>break_glass:${id}</td>`));
  });
});
