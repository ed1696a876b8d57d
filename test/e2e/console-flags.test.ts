import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, adminAuth, type AdminCall } from "../support/admin-client.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// The console's flag list over real HTTP against a real sidecar, flags written through AdminService.
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
let staff: Record<string, string> = {};

const signedInWith = (who: string) => signedIn(sidecar.httpPort, staff[who]!);

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  staff = await issueStaff(call, [["stf_eng", "engineer"], ["stf_agent", "support_agent"]]);
  const flagJson = JSON.stringify({
    key: "beta_markup", kind: "release", owner: "team-dash", risk: "low", description: "<script>alert(1)</script>",
    cleanupAt: "2027-03-31", rules: [{ rule: "percentage", params: { percentage: 10 } }],
  });
  await call("putFlag", { flagJson, reason: "maintenance: console test" }, adminAuth(staff.stf_eng!));
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("console flags", () => {
  it("lists flags with type, owner and cleanup date, escaping the description (owner is an id: markup is refused at input)", async () => {
    const page = await (await signedInWith("stf_eng")).get("/console/flags");
    expect(page.status).toBe(200);
    expect(page.body).toContain("<td>beta_markup</td><td>release</td><td>team-dash</td>");
    expect(page.body).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(page.body).not.toContain("<script>");
    expect(page.body).toContain("<td>2027-03-31</td>");
  });

  it("hides the link from, and refuses, a role without flags.write or flags.kill", async () => {
    const c = await signedInWith("stf_agent");
    expect((await c.get("/console/tenants")).body).not.toContain('href="/console/flags"');
    const page = await c.get("/console/flags");
    expect(page.status).toBe(403);
    expect(page.body).not.toContain("beta_markup");
  });

  it("kills a flag with a reason code (audited, source console); refuses no CSRF, no reason, or a role without flags.kill", async () => {
    const killedNow = () => (sidecar.bulkhead.db.prepare("SELECT killed FROM flags WHERE key = 'beta_markup'").get() as { killed: number }).killed;
    const eng = await signedInWith("stf_eng");
    await eng.get("/console/flags");
    const noCsrf = await eng.post("/console/flags/beta_markup/kill", { killed: "1", reason_code: "incident" }, { csrf: false });
    expect(noCsrf.status).toBe(403);
    const noReason = await eng.post("/console/flags/beta_markup/kill", { killed: "1" });
    expect(noReason.status).toBe(400);
    expect(noReason.body).toContain("reason");
    const agent = await signedInWith("stf_agent");
    const byHand = await agent.post("/console/flags/beta_markup/kill", { killed: "1", reason_code: "incident" });
    expect(byHand.status).toBe(403);
    expect(killedNow()).toBe(0);
    const killed = await eng.post("/console/flags/beta_markup/kill", { killed: "1", reason_code: "incident", reason_text: "INC-9" });
    expect(killed.status).toBe(303);
    expect(killedNow()).toBe(1);
    expect((await eng.get("/console/flags")).body).toContain("<td>killed</td>");
    const audit = sidecar.bulkhead.db.prepare("SELECT actor, reason, source FROM admin_audit WHERE action LIKE 'flag.kill%' ORDER BY id DESC").get() as Record<string, string>;
    expect(audit).toMatchObject({ reason: "incident: INC-9", source: "console" });
  });
});
