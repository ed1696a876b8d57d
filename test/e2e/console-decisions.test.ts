import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, type AdminCall } from "../support/admin-client.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { MINUTE, TEST_START, testClock } from "../support/test-time.js";

// The console's decision pages over real HTTP against a real sidecar whose
// decision log was written by real Check calls (real opa-wasm, real SQLite):
// one tenant only, the selected one; audit.read only.
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
let staff: Record<string, string> = {};
const rowsOf = (body: string) => (body.match(/<tr><td>/g) ?? []).length;

const signedInWith = (who: string, select?: string) => signedIn(sidecar.httpPort, staff[who]!, select);

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  staff = await issueStaff(call, [["stf_eng", "engineer"], ["stf_fin", "finance"]]);
  // 3 rounds a minute apart: carol reads in acme and in globex; alice reaches across tenants (denied, wrong_tenant).
  for (let i = 0; i < 3; i++) {
    await sidecar.check(checkRequest("ten_acme", "usr_carol", "projects.read"));
    await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.read"));
    await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"));
    clock.advance(MINUTE);
  }
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("console decisions", () => {
  it("searches the selected tenant's decisions only, by actor, result, reason and time", async () => {
    const c = await signedInWith("stf_eng", "ten_acme");
    const all = await c.get("/console/decisions");
    expect(all.status).toBe(200);
    expect(rowsOf(all.body)).toBe(6);
    expect(all.body).not.toContain("ten_globex</td>"); // globex decisions are never listed here
    const carol = await c.get("/console/decisions?actor_id=usr_carol");
    expect(rowsOf(carol.body)).toBe(3);
    const denied = await c.get("/console/decisions?result=deny&reason=wrong_tenant");
    expect(rowsOf(denied.body)).toBe(3);
    expect(denied.body).toContain("usr_alice");
    expect(denied.body).not.toContain("usr_carol");
    const since = new Date(TEST_START + 2 * MINUTE).toISOString();
    expect(rowsOf((await c.get(`/console/decisions?since=${since}`)).body)).toBe(2);
    const bad = await c.get("/console/decisions?result=maybe");
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("result");
  });

  it("opens a decision with its reasons, policy revision and store revision; another tenant's id is not found", async () => {
    const c = await signedInWith("stf_eng", "ten_acme");
    const list = await c.get("/console/decisions?result=deny");
    const link = /href="(\/console\/decisions\/[^"]+)"/.exec(list.body)![1]!;
    const one = await c.get(link);
    expect(one.status).toBe(200);
    expect(one.body).toContain("<code>wrong_tenant</code>");
    expect(one.body).toMatch(/<th>Policy revision<\/th><td>[^<]+<\/td>/);
    expect(one.body).toMatch(/<th>Store revision<\/th><td>\d+<\/td>/);
    // The same decision id, with globex selected, is outside the query and so not found.
    const other = await signedInWith("stf_eng", "ten_globex");
    const refused = await other.get(link);
    expect(refused.status).toBe(404);
    expect(refused.body).not.toContain("wrong_tenant</code>");
  });

  it("shows nothing before a tenant is selected", async () => {
    const c = await signedInWith("stf_eng");
    const page = await c.get("/console/decisions");
    expect(page.status).toBe(403);
    expect(page.body).toContain("tenant_id");
    expect(page.body).not.toContain("usr_carol");
  });

  it("hides the link from, and refuses, a role without audit.read", async () => {
    const c = await signedInWith("stf_fin", "ten_acme");
    expect((await c.get("/console/tenants")).body).not.toContain('href="/console/decisions"');
    const page = await c.get("/console/decisions");
    expect(page.status).toBe(403);
    expect(page.body).not.toContain("usr_carol");
    const eng = await signedInWith("stf_eng", "ten_acme");
    expect((await eng.get("/console/tenants")).body).toContain('href="/console/decisions"');
  });
});
