import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient, type AdminCall } from "../support/admin-client.js";
import { consoleClient } from "../support/console-client.js";
import { startSidecar, TEST_ADMIN_TOKEN, type TestSidecar } from "../support/sidecar.js";
import { HOUR, MINUTE, testClock } from "../support/test-time.js";

// The console over real HTTP against a real sidecar: sessions, CSRF, headers,
// explicit tenant selection, escaping and impersonation, each guard attacked.
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
const staff: Record<string, string> = {};
const reason = { reason_code: "customer_request", reason_text: "ticket 42" };
const auditRows = (action: string) =>
  sidecar.bulkhead.db.prepare("SELECT actor, tenant_id, reason, source FROM admin_audit WHERE action = ? ORDER BY id").all(action) as Record<string, string>[];

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true, impersonationMaxTtlSeconds: 3600 } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  for (const [id, role] of [["stf_agent", "support_agent"], ["stf_fin", "finance"], ["stf_gone", "support_agent"]] as const) {
    staff[id] = (await call<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding" })).token;
  }
  await call("putTenant", { tenantId: "ten_markup", slug: "markup", name: "<script>alert(1)</script>", status: "active", planCode: "free", billingStatus: "active", reason: "onboarding" });
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("console sessions", () => {
  it("is not served when BULKHEAD_CONSOLE is off", async () => {
    const plain = await startSidecar({ runtime: { clock } });
    try {
      expect((await consoleClient(plain.httpPort).get("/console/login")).status).toBe(404);
    } finally {
      await plain.close();
    }
  });

  it("sets strict headers on every console response and an HttpOnly, SameSite=Strict cookie scoped to /console", async () => {
    const c = consoleClient(sidecar.httpPort);
    const page = await c.get("/console/login");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("referrer-policy")).toBe("no-referrer");
    expect(page.headers.get("cache-control")).toBe("no-store");
    const response = await fetch(`http://127.0.0.1:${sidecar.httpPort}/console/login`, {
      method: "POST", redirect: "manual", body: new URLSearchParams({ token: staff.stf_agent! }),
    });
    expect(response.status).toBe(303);
    const cookie = response.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^bulkhead_console=[A-Za-z0-9_-]{43}; Path=\/console; HttpOnly; SameSite=Strict; Max-Age=28800$/);
    expect(cookie).not.toContain(staff.stf_agent!);
  });

  it("refuses a wrong token, and the shared bootstrap token without an operator name", async () => {
    const c = consoleClient(sidecar.httpPort);
    expect(await c.login("bk_staff_wrong")).toBe(401);
    expect(await c.login(TEST_ADMIN_TOKEN)).toBe(400);
    expect(await c.login(TEST_ADMIN_TOKEN, "alice")).toBe(303);
    expect((await c.get("/console/tenants")).body).toContain("bootstrap:alice");
  });

  it("refuses a form posted without the CSRF token, or with another session's", async () => {
    const a = consoleClient(sidecar.httpPort);
    const b = consoleClient(sidecar.httpPort);
    await a.login(staff.stf_agent!);
    await b.login(staff.stf_agent!);
    const missing = await a.post("/console/tenants/ten_acme/select", reason, { csrf: false });
    expect(missing.status).toBe(403);
    expect(missing.body).toContain("CONSOLE_CSRF");
    const foreign = await a.post("/console/tenants/ten_acme/select", { ...reason, csrf: b.csrf }, { csrf: false });
    expect(foreign.status).toBe(403);
    expect(auditRows("tenant.select")).toHaveLength(0);
  });

  it("stops access after sign-out, after the session expires, and at once when the staff member is disabled", async () => {
    const out = consoleClient(sidecar.httpPort);
    await out.login(staff.stf_agent!);
    const stale = out.cookie;
    expect((await out.post("/console/logout", {})).location).toBe("/console/login?out=1");
    const replay = await fetch(`http://127.0.0.1:${sidecar.httpPort}/console/tenants`, { headers: { cookie: stale }, redirect: "manual" });
    expect(replay.status).toBe(303);

    const expiring = consoleClient(sidecar.httpPort);
    await expiring.login(staff.stf_agent!);
    clock.advance(8 * HOUR);
    const after = await expiring.get("/console/tenants");
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/console/login?expired=1");

    const gone = consoleClient(sidecar.httpPort);
    await gone.login(staff.stf_gone!);
    expect((await gone.get("/console/tenants")).status).toBe(200);
    await call("putStaff", { staffId: "stf_gone", name: "stf_gone", role: "support_agent", status: "disabled", reason: "offboarding" });
    expect((await gone.get("/console/tenants")).headers.get("location")).toBe("/console/login?revoked=1");
  });
});

describe("tenants", () => {
  it("searches with minimal data, then shows a tenant only after an audited selection with a reason", async () => {
    const c = consoleClient(sidecar.httpPort);
    await c.login(staff.stf_agent!);
    const search = await c.get("/console/tenants?q=acme");
    expect(search.body).toContain("ten_acme");
    expect(search.body).not.toContain("ten_globex");
    expect(search.body).not.toContain("Acme"); // the name is not minimal data
    expect((await c.get("/console/tenants/ten_acme")).status).toBe(403);
    expect((await c.post("/console/tenants/ten_acme/select", {})).status).toBe(400); // no reason
    expect((await c.post("/console/tenants/ten_acme/select", { reason_code: "curiosity" })).status).toBe(400);
    expect((await c.post("/console/tenants/ten_acme/select", reason)).location).toBe("/console/tenants/ten_acme");
    const page = await c.get("/console/tenants/ten_acme");
    expect(page.status).toBe(200);
    expect(page.body).toContain("Billing status");
    expect(auditRows("tenant.select").at(-1)).toEqual({ actor: "staff:stf_agent", tenant_id: "ten_acme", reason: "customer_request: ticket 42", source: "console" });
    expect(page.body).toContain("tenant.select");
    // Selecting acme opened acme only; another tenant stays closed, and selecting it closes acme.
    expect((await c.get("/console/tenants/ten_globex")).status).toBe(403);
    await c.post("/console/tenants/ten_globex/select", reason);
    expect((await c.get("/console/tenants/ten_acme")).status).toBe(403);
  });

  it("shows a tenant named with markup escaped", async () => {
    const c = consoleClient(sidecar.httpPort);
    await c.login(staff.stf_agent!);
    await c.post("/console/tenants/ten_markup/select", reason);
    const page = await c.get("/console/tenants/ten_markup");
    expect(page.body).not.toContain("<script>");
    expect(page.body).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
  });
});

describe("impersonation", () => {
  it("is refused to a role without it, and needs the tenant selected", async () => {
    const fin = consoleClient(sidecar.httpPort);
    await fin.login(staff.stf_fin!);
    await fin.post("/console/tenants/ten_acme/select", reason);
    const page = await fin.get("/console/tenants/ten_acme");
    expect(page.body).not.toContain("Start impersonation");
    expect(page.body).not.toContain("/impersonate");
    const posted = await fin.post("/console/tenants/ten_acme/impersonate", { ...reason, as_actor_id: "usr_alice", ttl_minutes: "5" });
    expect(posted.status).toBe(403);
    expect(posted.body).toContain("ADMIN_FORBIDDEN");

    const agent = consoleClient(sidecar.httpPort);
    await agent.login(staff.stf_agent!);
    expect((await agent.post("/console/tenants/ten_acme/impersonate", { ...reason, as_actor_id: "usr_alice", ttl_minutes: "5" })).status).toBe(403);
  });

  it("shows a banner on every page while it lasts and ends by itself at expiry", async () => {
    const c = consoleClient(sidecar.httpPort);
    await c.login(staff.stf_agent!);
    await c.post("/console/tenants/ten_acme/select", reason);
    const member = (await c.get("/console/tenants/ten_acme")).body.match(/<option value="([^"]+)">/g)?.find((o) => o.includes("usr_"));
    const asActor = /value="([^"]+)"/.exec(member!)![1]!;
    const started = await c.post("/console/tenants/ten_acme/impersonate", { ...reason, as_actor_id: asActor, ttl_minutes: "10" });
    expect(started.status).toBe(303);
    for (const path of ["/console/tenants", "/console/tenants/ten_acme", "/console/tenants?q=glob"]) {
      const page = await c.get(path);
      expect(page.body).toContain('id="impersonation-banner"');
      expect(page.body).toContain(asActor);
      expect(page.body).toContain("staff:stf_agent");
      expect(page.body).toContain("10 min 0 s left");
    }
    clock.advance(10 * MINUTE);
    const ended = await c.get("/console/tenants");
    expect(ended.body).not.toContain('id="impersonation-banner"');
    expect(ended.body).toContain("(it expired)");
    expect(auditRows("impersonation.start").at(-1)).toMatchObject({ actor: "staff:stf_agent", tenant_id: "ten_acme", source: "console" });
  });
});
