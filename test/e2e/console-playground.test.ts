import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { TEST_START, testClock } from "../support/test-time.js";
import { readRevision } from "../../src/store/revision-writer.js";

// The Check playground and the audited decision queries (ADR 90), over real
// HTTP and a real gRPC client against a real sidecar (real opa-wasm, real SQLite).
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
let staff: Record<string, string> = {};

const signedInWith = (who: string, select?: string) => signedIn(sidecar.httpPort, staff[who]!, select);
const count = (sql: string, ...params: unknown[]) => (sidecar.bulkhead.db.prepare(sql).get(...params) as { n: number }).n;
const auditRows = (action: string) =>
  sidecar.bulkhead.db.prepare("SELECT actor, tenant_id AS tenantId, object, reason, source FROM admin_audit WHERE action = ? ORDER BY id").all(action) as {
    actor: string; tenantId: string; object: string; reason: string; source: string;
  }[];
const usageOf = () => JSON.stringify(sidecar.bulkhead.db.prepare("SELECT * FROM usage_counters ORDER BY 1, 2").all());
const explain = (c: Awaited<ReturnType<typeof signedInWith>>, fields: Record<string, string>) => c.post("/console/playground", fields);

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  staff = await issueStaff(call, [["stf_eng", "engineer"], ["stf_fin", "finance"], ["stf_sup", "support_agent"], ["stf_adm", "support_admin"]]);
  await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"));
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("console Check playground", () => {
  it("explains an allow on the live policy and store, and consumes, logs and revises nothing but its audit row", async () => {
    const c = await signedInWith("stf_eng", "ten_acme");
    // Flushed first: the buffered log may still hold beforeAll's Check.
    sidecar.bulkhead.decisionLog.flush();
    const before = {
      decisions: count("SELECT count(*) AS n FROM decision_log"), usage: usageOf(), revision: readRevision(sidecar.bulkhead.db),
      audits: auditRows("check.explain").length, changes: count("SELECT count(*) AS n FROM changes"),
    };
    // projects.create has a meter: a Check with consume would charge it; the playground never does.
    const posted = await explain(c, { actor_id: "usr_alice", action: "projects.create", resource_type: "projects", resource_id: "prj_1" });
    expect(posted.status).toBe(303);
    expect(posted.location).toBe("/console/playground");
    const page = await c.get("/console/playground");
    expect(page.status).toBe(200);
    expect(page.body).toContain('<td id="result">allow</td>');
    expect(page.body).toContain(`<td id="policy-revision">${sidecar.bulkhead.policies.policy.revision}</td>`);
    // The audit row is the one write, made before the evaluation, so the answer is as of the revision it committed.
    const after = readRevision(sidecar.bulkhead.db);
    expect(after).toBe(before.revision + 1);
    expect(page.body).toContain(`<td id="store-revision">${after}</td>`);
    sidecar.bulkhead.decisionLog.flush();
    expect(count("SELECT count(*) AS n FROM decision_log")).toBe(before.decisions);
    expect(usageOf()).toBe(before.usage);
    // The row is history, not a change: no change-feed entry, so no tenant's caches are emptied by it.
    expect(count("SELECT count(*) AS n FROM changes")).toBe(before.changes);
    const rows = auditRows("check.explain");
    expect(rows).toHaveLength(before.audits + 1);
    expect(rows.at(-1)).toEqual({
      actor: "staff:stf_eng", tenantId: "ten_acme", reason: "audit.read", source: "console",
      object: "check?actor_id=usr_alice&actor_type=user&action=projects.create&resource=projects%2Fprj_1&resource_tenant_id=ten_acme",
    });
  });

  it("answers as a Check would: the policy's reasons in order, and another tenant's resource is wrong_tenant", async () => {
    const c = await signedInWith("stf_eng", "ten_acme");
    const viewer = { actor_id: "usr_bob", action: "projects.create", resource_type: "projects", resource_id: "prj_1" };
    await explain(c, viewer);
    const asCheck = await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.create"));
    const page = (await c.get("/console/playground")).body;
    expect(page).toContain('<td id="result">deny</td>');
    const shown = [...page.matchAll(/<li><code>([a-z_]+)<\/code>/g)].map((m) => m[1]);
    expect(shown).toEqual(asCheck.reasons.map((r) => r.code));
    expect(shown.length).toBeGreaterThan(0);

    await explain(c, { actor_id: "usr_alice", action: "projects.read", resource_type: "projects", resource_id: "prj_9", resource_tenant_id: "ten_globex" });
    const across = (await c.get("/console/playground")).body;
    expect(across).toContain('<td id="result">deny</td>');
    expect(across).toContain("<code>wrong_tenant</code>");
    // The principal is always the selected tenant's: initech's dave is no member of acme.
    await explain(c, { actor_id: "usr_dave", action: "projects.read", resource_type: "projects", resource_id: "prj_1" });
    const stranger = (await c.get("/console/playground")).body;
    expect(stranger).toContain('<td id="result">deny</td>');
    expect(stranger).toContain("<code>not_a_member</code>");
  });

  it("refuses a role without audit.read, a session with no tenant selected and a post without CSRF; nothing is audited", async () => {
    const audits = auditRows("check.explain").length;
    const fields = { actor_id: "usr_alice", action: "projects.read", resource_type: "projects", resource_id: "prj_1" };
    for (const who of ["stf_fin", "stf_sup"]) {
      const c = await signedInWith(who, "ten_acme");
      expect((await c.get("/console/tenants")).body).not.toContain('href="/console/playground"');
      expect((await c.get("/console/playground")).status).toBe(403);
      expect((await explain(c, fields)).status).toBe(403);
    }
    const none = await signedInWith("stf_eng");
    expect((await none.get("/console/playground")).status).toBe(403);
    expect((await explain(none, fields)).status).toBe(403);
    const eng = await signedInWith("stf_eng", "ten_acme");
    expect((await eng.post("/console/playground", fields, { csrf: false })).status).toBe(403);
    expect(auditRows("check.explain")).toHaveLength(audits);
  });

  it("fails closed: a bad request is refused with its field and leaves no earlier answer on the page; another tenant's answer is never shown", async () => {
    const c = await signedInWith("stf_adm", "ten_acme");
    await explain(c, { actor_id: "usr_alice", action: "projects.read", resource_type: "projects", resource_id: "prj_1" });
    expect((await c.get("/console/playground")).body).toContain('<td id="result">allow</td>');
    const bad = await explain(c, { actor_id: "usr_alice", action: "projects.read", resource_type: "projects", attributes: "{not json" });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("resource.attributes");
    expect((await c.get("/console/playground")).body).not.toContain('id="result"');
    await explain(c, { actor_id: "usr_alice", action: "projects.read", resource_type: "projects", resource_id: "prj_1" });
    // Selecting globex drops acme's answer.
    await c.post("/console/tenants/ten_globex/select", { reason_code: "customer_request" });
    const globex = await c.get("/console/playground");
    expect(globex.status).toBe(200);
    expect(globex.body).not.toContain('id="result"');
  });
});

describe("decision queries are audited (QueryDecisions and the console)", () => {
  it("records actor, tenant and filters for each QueryDecisions call", async () => {
    const before = auditRows("decisions.query").length;
    const since = new Date(TEST_START).toISOString();
    const page = await call<{ decisions: unknown[] }>("queryDecisions", { tenantId: "ten_acme", actorId: "usr_alice", result: "allow", since }, adminAuth(staff.stf_eng!, ""));
    expect(page.decisions.length).toBeGreaterThan(0);
    const rows = auditRows("decisions.query");
    expect(rows).toHaveLength(before + 1);
    expect(rows.at(-1)).toEqual({ actor: "staff:stf_eng", tenantId: "ten_acme", object: `decision_log?actor_id=usr_alice&result=allow&since=${encodeURIComponent(since)}`, reason: "audit.read", source: "admin_api" });
  });

  it("records nothing for a refused caller or a refused filter", async () => {
    const before = auditRows("decisions.query").length;
    await expect(call("queryDecisions", { tenantId: "ten_acme" }, adminAuth(staff.stf_fin!, ""))).rejects.toMatchObject({ details: expect.stringContaining("audit.read") });
    await expect(call("queryDecisions", { tenantId: "ten_acme", result: "maybe" }, adminAuth(staff.stf_eng!, ""))).rejects.toMatchObject({ details: expect.stringContaining("result") });
    expect(auditRows("decisions.query")).toHaveLength(before);
  });

  it("records each console search and each opened decision, with source console", async () => {
    const c = await signedInWith("stf_eng", "ten_acme");
    const before = auditRows("decisions.query").length;
    const list = await c.get("/console/decisions?result=allow");
    expect(list.status).toBe(200);
    const link = /href="\/console\/decisions\/([^"]+)"/.exec(list.body)![1]!;
    expect((await c.get(`/console/decisions/${link}`)).status).toBe(200);
    const rows = auditRows("decisions.query").slice(before);
    expect(rows).toEqual([
      { actor: "staff:stf_eng", tenantId: "ten_acme", object: "decision_log?result=allow", reason: "audit.read", source: "console" },
      { actor: "staff:stf_eng", tenantId: "ten_acme", object: `decision_log?decision_id=${link}`, reason: "audit.read", source: "console" },
    ]);
    // A finance session is refused before any query, so it leaves no row.
    const fin = await signedInWith("stf_fin", "ten_acme");
    expect((await fin.get("/console/decisions")).status).toBe(403);
    expect(auditRows("decisions.query")).toHaveLength(before + 2);
  });
});
