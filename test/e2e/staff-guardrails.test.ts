import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { checkRequest, codes, startSidecar, TEST_SYNC_TOKEN, type TestSidecar } from "../support/sidecar.js";
import { DAY, TEST_START, testClock } from "../support/test-time.js";

// Staff guardrails end to end over the real AdminService: per-person staff
// tokens and roles, the directory-sync credential, reason codes, the
// two-person rule for global writes, impersonation with exact expiry, API
// keys and tenant deletion. Every guard here has a test that attacks it.
const START = TEST_START;
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
const staff: Record<string, string> = {};

const as = (who: string) => adminAuth(staff[who] ?? who, "");
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e) => e);
const auditCount = () => sidecar.bulkhead.db.prepare("SELECT count(*) FROM admin_audit").pluck().get() as number;
const staffCheck = (tenantId: string, staffId: string, action: string, resourceTenantId = tenantId) =>
  sidecar.check({ ...checkRequest(tenantId, staffId, action, resourceTenantId), principal: { tenantId, actorId: staffId, actorType: "staff", requestId: "req_staff" } });

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock }, config: { impersonationMaxTtlSeconds: 900 } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  for (const [id, role] of [["stf_agent", "support_agent"], ["stf_admin", "support_admin"], ["stf_fin", "finance"], ["stf_fin2", "finance"], ["stf_eng", "engineer"]]) {
    const created = await call<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding: new hire" });
    staff[id!] = created.token;
  }
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("credentials", () => {
  it("gives each staff member a token shown once, stored only as a keyed hash", async () => {
    expect(staff.stf_agent).toMatch(/^bk_staff_[A-Za-z0-9_-]{43}$/);
    const stored = sidecar.bulkhead.db.prepare("SELECT token_hash FROM staff WHERE id = 'stf_agent'").pluck().get() as string;
    expect(stored).toMatch(/^[0-9a-f]{64}$/);
    expect(stored).not.toContain(staff.stf_agent!.slice(9));
  });

  it("rejects a disabled staff member's token, and a reissued token replaces the old one", async () => {
    const created = await call<{ token: string }>("putStaff", { staffId: "stf_temp", name: "Temp", role: "support_agent", reason: "onboarding" });
    expect((await call("getTenant", { tenantId: "ten_acme" }, as(created.token))).slug).toBe("acme");
    const reissued = await call<{ token: string }>("putStaff", { staffId: "stf_temp", name: "Temp", role: "support_agent", issueToken: true, reason: "security: lost laptop" });
    expect((await failure(call("getTenant", { tenantId: "ten_acme" }, as(created.token)))).code).toBe(status.UNAUTHENTICATED);
    await call("putStaff", { staffId: "stf_temp", name: "Temp", role: "support_agent", status: "disabled", reason: "offboarding" });
    expect((await failure(call("getTenant", { tenantId: "ten_acme" }, as(reissued.token)))).code).toBe(status.UNAUTHENTICATED);
  });

  it("lets only the bootstrap credential manage staff", async () => {
    const error = await failure(call("putStaff", { staffId: "stf_evil", name: "Evil", role: "support_admin", reason: "onboarding" }, as("stf_admin")));
    expect(error.code).toBe(status.PERMISSION_DENIED);
    expect(sidecar.bulkhead.stores.staff.get("stf_evil")).toBeUndefined();
  });

  it("keeps the directory-sync credential to directory work", async () => {
    const sync = adminAuth(TEST_SYNC_TOKEN, "hris");
    const result = await call("putMembership", { tenantId: "ten_globex", membership: { actorId: "usr_synced", role: "member" }, reason: "directory_sync" }, sync);
    expect(result.changed).toBe(true);
    const audit = sidecar.bulkhead.db.prepare("SELECT actor FROM admin_audit WHERE object = 'membership:ten_globex/usr_synced'").pluck().get();
    expect(audit).toBe("sync:hris");
    for (const [method, request] of [
      ["startImpersonation", { tenantId: "ten_acme", asActorId: "usr_alice", ttlSeconds: 60, reason: "customer_request" }],
      ["createApiKey", { tenantId: "ten_acme", name: "k", scopes: ["projects.read"], reason: "customer_request" }],
      ["putOverride", { tenantId: "ten_acme", entitlement: "sso", effect: "grant", reason: "billing_correction" }],
      ["getTenant", { tenantId: "ten_acme" }],
    ] as const) {
      expect((await failure(call(method, request, sync))).code, method).toBe(status.PERMISSION_DENIED);
    }
  });
});

describe("reasons and tenants", () => {
  it.each([
    ["no reason", { tenantId: "ten_acme", slug: "acme", planCode: "pro", region: "eu", reason: "" }, "reason"],
    ["a reason that is not a configured code", { tenantId: "ten_acme", slug: "acme", planCode: "pro", region: "eu", reason: "felt like it" }, "reason"],
    ["no tenant", { tenantId: "", slug: "acme", planCode: "pro", region: "eu", reason: "customer_request" }, "tenant_id"],
  ])("rejects an admin write with %s and writes nothing", async (_name, request, field) => {
    const revision = sidecar.bulkhead.tracker.sync();
    const audits = auditCount();
    const error = await failure(call("putTenant", request, as("stf_admin")));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual([field]);
    expect(sidecar.bulkhead.tracker.sync()).toBe(revision);
    expect(auditCount()).toBe(audits);
    expect(sidecar.bulkhead.stores.directory.tenantById("ten_acme")!.region).toBe("us");
  });

  it("records actor, tenant, object, action, reason and source for a staff write", async () => {
    await call("putTenant", { tenantId: "ten_globex", slug: "globex", planCode: "free", region: "eu", tags: ["beta"], reason: "customer_request: ticket 7" }, as("stf_admin"));
    const row = sidecar.bulkhead.db.prepare("SELECT actor, tenant_id, object, action, reason, source, result FROM admin_audit ORDER BY id DESC LIMIT 1").get();
    expect(row).toEqual({
      actor: "staff:stf_admin", tenant_id: "ten_globex", object: "tenant:ten_globex", action: "tenant.put",
      reason: "customer_request: ticket 7", source: "admin_api", result: "ok",
    });
  });
});

describe("support_agent", () => {
  it("reads tenant metadata, and search returns only id, slug and status", async () => {
    const details = await call("getTenant", { tenantId: "ten_acme" }, as("stf_agent"));
    expect(details).toMatchObject({ tenantId: "ten_acme", slug: "acme", planCode: "pro", memberCount: 3 });
    const found = await call("searchTenants", { query: "ten_" }, as("stf_agent"));
    expect(found.tenants.map((t: { tenantId: string }) => t.tenantId)).toEqual(expect.arrayContaining(["ten_acme", "ten_globex", "ten_initech"]));
    expect(Object.keys(found.tenants[0]).sort()).toEqual(["slug", "status", "tenantId"]);
    expect((await call("searchTenants", { query: "glo" }, as("stf_agent"))).tenants).toEqual([{ tenantId: "ten_globex", slug: "globex", status: "active" }]);
  });

  it.each([
    ["change a tenant's plan", "putTenant", { tenantId: "ten_acme", slug: "acme", planCode: "enterprise", reason: "customer_request" }],
    ["grant an entitlement", "putOverride", { tenantId: "ten_acme", entitlement: "sso", effect: "grant", reason: "customer_request" }],
    ["change memberships", "putMembership", { tenantId: "ten_acme", membership: { actorId: "usr_bob", role: "owner" }, reason: "customer_request" }],
    ["create API keys", "createApiKey", { tenantId: "ten_acme", name: "k", scopes: ["reports.export"], reason: "customer_request" }],
    ["delete a tenant", "deleteTenant", { tenantId: "ten_acme", confirmSlug: "acme", reason: "customer_request" }],
  ])("cannot %s", async (_what, method, request) => {
    const revision = sidecar.bulkhead.tracker.sync();
    const error = await failure(call(method, request, as("stf_agent")));
    expect(error.code).toBe(status.PERMISSION_DENIED);
    expect(error.details).toContain("support_agent");
    expect(sidecar.bulkhead.tracker.sync()).toBe(revision);
  });

  it("cannot export customer data or change billing while impersonating the owner", async () => {
    await call("startImpersonation", { tenantId: "ten_acme", asActorId: "usr_alice", ttlSeconds: 600, reason: "customer_request: ticket 9" }, as("stf_agent"));
    expect((await staffCheck("ten_acme", "stf_agent", "projects.read")).allow).toBe(true);
    expect(codes(await staffCheck("ten_acme", "stf_agent", "reports.export"))).toEqual(["impersonation_restricted"]);
    expect(codes(await staffCheck("ten_acme", "stf_agent", "billing.update"))).toEqual(["impersonation_restricted"]);
    expect(codes(await staffCheck("ten_acme", "stf_agent", "projects.read", "ten_globex"))).toEqual(["wrong_tenant"]);
    expect(codes(await staffCheck("ten_globex", "stf_agent", "projects.read"))).toEqual(["not_a_member"]);
  });
});

describe("billing changes", () => {
  it("need billing.write: support_admin may change a region but not a plan, finance may change the plan", async () => {
    await call("putTenant", { tenantId: "ten_initech", slug: "initech", planCode: "pro", billingStatus: "unpaid", region: "eu", reason: "customer_request" }, as("stf_admin"));
    const plan = await failure(call("putTenant", { tenantId: "ten_initech", slug: "initech", planCode: "enterprise", billingStatus: "unpaid", region: "eu", reason: "customer_request" }, as("stf_admin")));
    expect(plan.code).toBe(status.PERMISSION_DENIED);
    const newOnPro = await failure(call("putTenant", { tenantId: "ten_newpro", slug: "newpro", planCode: "pro", reason: "onboarding" }, as("stf_admin")));
    expect(newOnPro.code).toBe(status.PERMISSION_DENIED);
    const profileByFinance = await failure(call("putTenant", { tenantId: "ten_initech", slug: "initech", planCode: "pro", billingStatus: "unpaid", region: "us", reason: "billing_correction" }, as("stf_fin")));
    expect(profileByFinance.code).toBe(status.PERMISSION_DENIED);
    const paid = await call("putTenant", { tenantId: "ten_initech", slug: "initech", planCode: "enterprise", billingStatus: "active", region: "eu", reason: "billing_correction: paid by wire" }, as("stf_fin"));
    expect((await sidecar.check(checkRequest("ten_initech", "usr_dave", "projects.create", "ten_initech", { minRevision: paid.storeRevision }))).allow).toBe(true);
    const fixed = await call("putOverride", { tenantId: "ten_globex", entitlement: "analytics.pro", effect: "grant", expiresAt: new Date(START + 5 * DAY).toISOString(), reason: "billing_correction: goodwill" }, as("stf_fin"));
    expect(fixed.overrideId).toBeGreaterThan(0);
    const allowed = await sidecar.check(checkRequest("ten_globex", "usr_carol", "analytics.view", "ten_globex", { minRevision: fixed.storeRevision }));
    expect(allowed.allow).toBe(true);
    const wrongTenant = await failure(call("removeOverride", { tenantId: "ten_acme", overrideId: fixed.overrideId, reason: "billing_correction" }, as("stf_fin")));
    expect(wrongTenant.code).toBe(status.NOT_FOUND);
    await call("removeOverride", { tenantId: "ten_globex", overrideId: fixed.overrideId, reason: "billing_correction" }, as("stf_fin"));
    expect(codes(await sidecar.check(checkRequest("ten_globex", "usr_carol", "analytics.view")))).toEqual(["not_in_plan"]);
  });
});

describe("global writes", () => {
  const plan = { planCode: "team", name: "Team", entitlements: ["projects", "team_members"], limits: [{ meter: "seats", hard: 25 }] };

  it("need all_tenants and an approval from a second staff member, for exactly that change, used once", async () => {
    const refused = await failure(call("putPlan", { ...plan, reason: "maintenance" }, as("stf_fin")));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    const action = /approval for '([^']+)'/.exec(refused.details)![1]!;
    expect(action).toMatch(/^plan\.put:team@[0-9a-f]{64}$/);
    expect((await failure(call("putPlan", { ...plan, allTenants: true, reason: "maintenance" }, as("stf_fin")))).code).toBe(status.FAILED_PRECONDITION);

    const approval = await call("requestApproval", { action, putPlan: plan, reason: "maintenance: new plan" }, as("stf_fin"));
    // The approver reads exactly what will be written before approving.
    const seen = await call("getApproval", { approvalId: approval.approvalId }, as("stf_eng"));
    expect(JSON.parse(seen.contentJson)).toEqual({ code: "team", name: "Team", entitlements: ["projects", "team_members"], limits: [{ meter: "seats", soft: null, hard: 25 }] });
    expect(seen).toMatchObject({ action, requestedBy: "staff:stf_fin", approvedBy: "", reason: "maintenance: new plan" });
    const self = await failure(call("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin")));
    expect(self.code).toBe(status.FAILED_PRECONDITION);
    expect((await failure(call("putPlan", { ...plan, allTenants: true, approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin")))).details).toContain("not been approved");

    // Someone who holds the write the approval covers, not merely the approvals right (ADR 79).
    const engineer = await failure(call("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_eng")));
    expect(engineer.code).toBe(status.PERMISSION_DENIED);
    expect(engineer.details).toContain("plans.write");
    await call("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin2"));
    const byOther = await failure(call("putPlan", { ...plan, allTenants: true, approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin2")));
    expect(byOther.details).toContain("someone else");
    const otherContent = await failure(call("putPlan", { ...plan, limits: [{ meter: "seats", hard: 2500 }], allTenants: true, approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin")));
    expect(otherContent.details).toContain("differs from what was approved");

    const written = await call("putPlan", { ...plan, allTenants: true, approvalId: approval.approvalId, reason: "maintenance: new plan" }, as("stf_fin"));
    expect(written.changed).toBe(true);
    expect(sidecar.bulkhead.stores.entitlements.plan("team")!.limits).toEqual([{ meter: "seats", soft: null, hard: 25 }]);
    const audit = sidecar.bulkhead.db.prepare("SELECT tenant_id, actor FROM admin_audit WHERE action = 'plan.put'").get();
    expect(audit).toEqual({ tenant_id: null, actor: "staff:stf_fin" });
    expect((await failure(call("putPlan", { ...plan, allTenants: true, approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin")))).details).toContain("already used");
  });

  it("lapse when the approver is no longer active staff", async () => {
    const refused = await failure(call("putPlan", { ...plan, name: "Team 2", reason: "maintenance" }, as("stf_fin")));
    const action = /approval for '([^']+)'/.exec(refused.details)![1]!;
    const approval = await call("requestApproval", { action, putPlan: { ...plan, name: "Team 2" }, reason: "maintenance" }, as("stf_fin"));
    await call("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin2"));
    await call("putStaff", { staffId: "stf_fin2", name: "stf_fin2", role: "finance", status: "disabled", reason: "offboarding" });
    const lapsed = await failure(call("putPlan", { ...plan, name: "Team 2", allTenants: true, approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin")));
    expect(lapsed.details).toContain("no longer active");
    const malformed = await failure(call("requestApproval", { action: "drop_everything", putPlan: plan, reason: "maintenance" }, as("stf_fin")));
    expect(malformed.metadata.get("bulkhead-field")).toEqual(["action"]);
    const blind = await failure(call("requestApproval", { action, reason: "maintenance" }, as("stf_fin")));
    expect(blind.metadata.get("bulkhead-field")).toEqual(["change"]);
    const mismatched = await failure(call("requestApproval", { action, putPlan: plan, reason: "maintenance" }, as("stf_fin")));
    expect(mismatched.metadata.get("bulkhead-field")).toEqual(["action"]);
  });

  it("include changing a user who belongs to several tenants", async () => {
    const error = await failure(call("putUser", { tenantId: "ten_acme", userId: "usr_carol", email: "carol@example.com", reason: "customer_request" }, as("stf_admin")));
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.metadata.get("bulkhead-field")).toEqual(["all_tenants"]);
    const own = await call("putUser", { tenantId: "ten_acme", userId: "usr_alice", email: "alice@example.com", reason: "customer_request" }, as("stf_admin"));
    expect(own.changed).toBe(true);
  });
});

describe("impersonation", () => {
  it("is time-boxed: the maximum is enforced and a Check one second after expiry is denied", async () => {
    const tooLong = await failure(call("startImpersonation", { tenantId: "ten_globex", asActorId: "usr_carol", ttlSeconds: 901, reason: "customer_request" }, as("stf_admin")));
    expect(tooLong.metadata.get("bulkhead-field")).toEqual(["ttl_seconds"]);
    const notMember = await failure(call("startImpersonation", { tenantId: "ten_globex", asActorId: "usr_alice", ttlSeconds: 60, reason: "customer_request" }, as("stf_admin")));
    expect(notMember.metadata.get("bulkhead-field")).toEqual(["as_actor_id"]);
    const bootstrap = await failure(call("startImpersonation", { tenantId: "ten_globex", asActorId: "usr_carol", ttlSeconds: 60, reason: "customer_request" }));
    expect(bootstrap.code).toBe(status.PERMISSION_DENIED);

    const session = await call("startImpersonation", { tenantId: "ten_globex", asActorId: "usr_carol", ttlSeconds: 60, reason: "customer_request: ticket 11" }, as("stf_admin"));
    expect(session.expiresAt).toBe(new Date(clock.now() + 60_000).toISOString());
    const during = await staffCheck("ten_globex", "stf_admin", "projects.create");
    expect(during.allow).toBe(true);
    clock.advance(59_999);
    expect((await staffCheck("ten_globex", "stf_admin", "projects.create")).allow).toBe(true);
    clock.advance(1);
    expect(codes(await staffCheck("ten_globex", "stf_admin", "projects.create"))).toEqual(["not_a_member"]);
    clock.advance(1000);
    expect(codes(await staffCheck("ten_globex", "stf_admin", "projects.read"))).toEqual(["not_a_member"]);

    sidecar.bulkhead.decisionLog.flush();
    const logged = sidecar.bulkhead.db.prepare("SELECT actor_id, actor_type, impersonation FROM decision_log WHERE decision_id = ?").get(during.decisionId) as Record<string, string>;
    expect(logged).toMatchObject({ actor_id: "stf_admin", actor_type: "staff" });
    expect(JSON.parse(logged.impersonation!)).toEqual({ session_id: session.sessionId, staff_id: "stf_admin", as_actor_id: "usr_carol" });
  });

  it("ends on request, only by the staff member who started it", async () => {
    const session = await call("startImpersonation", { tenantId: "ten_acme", asActorId: "usr_bob", ttlSeconds: 600, reason: "customer_request" }, as("stf_admin"));
    expect((await staffCheck("ten_acme", "stf_admin", "projects.read")).allow).toBe(true);
    const other = await failure(call("endImpersonation", { tenantId: "ten_acme", sessionId: session.sessionId, reason: "customer_request" }, as("stf_agent")));
    expect(other.code).toBe(status.PERMISSION_DENIED);
    const crossTenant = await failure(call("endImpersonation", { tenantId: "ten_globex", sessionId: session.sessionId, reason: "customer_request" }, as("stf_admin")));
    expect(crossTenant.code).toBe(status.NOT_FOUND);
    await call("endImpersonation", { tenantId: "ten_acme", sessionId: session.sessionId, reason: "customer_request" }, as("stf_admin"));
    expect(codes(await staffCheck("ten_acme", "stf_admin", "projects.read"))).toEqual(["not_a_member"]);
  });
});

describe("API keys over AdminService", () => {
  it("creates, lists, rotates and revokes within one tenant only", async () => {
    const created = await call("createApiKey", { tenantId: "ten_acme", name: "ci", scopes: ["projects.read"], expiresInDays: 30, reason: "customer_request" }, as("stf_admin"));
    expect(created.apiKey).toMatch(/^bk_key_/);
    const keyCheck = (apiKey: string) => sidecar.check({ principal: { apiKey }, action: "projects.read", resource: { type: "project", id: "p", tenantId: "ten_acme" } });
    expect((await keyCheck(created.apiKey)).allow).toBe(true);
    const listed = await call("listApiKeys", { tenantId: "ten_acme" }, as("stf_agent"));
    expect(listed.keys.find((k: { keyId: string }) => k.keyId === created.keyId)).toMatchObject({ name: "ci", state: "active", scopes: ["projects.read"] });
    expect(JSON.stringify(listed)).not.toContain(created.apiKey.split(".")[1]);

    const unknownScope = await failure(call("createApiKey", { tenantId: "ten_acme", name: "x", scopes: ["projects.teleport"], reason: "customer_request" }, as("stf_admin")));
    expect(unknownScope.metadata.get("bulkhead-field")).toEqual(["scopes[0]"]);
    const otherTenant = await failure(call("revokeApiKey", { tenantId: "ten_globex", keyId: created.keyId, reason: "security" }, as("stf_admin")));
    expect(otherTenant.code).toBe(status.NOT_FOUND);
    expect((await keyCheck(created.apiKey)).allow).toBe(true);

    const rotated = await call("rotateApiKey", { tenantId: "ten_acme", keyId: created.keyId, overlapSeconds: 30, reason: "security: rotation" }, as("stf_admin"));
    expect((await keyCheck(created.apiKey)).allow).toBe(true);
    expect((await keyCheck(rotated.apiKey)).allow).toBe(true);
    clock.advance(30_000);
    expect(codes(await keyCheck(created.apiKey))).toEqual(["api_key_invalid"]);
    await call("revokeApiKey", { tenantId: "ten_acme", keyId: rotated.keyId, reason: "security" }, as("stf_admin"));
    expect(codes(await keyCheck(rotated.apiKey))).toEqual(["api_key_invalid"]);
  });
});

describe("custom roles", () => {
  it("are validated against the action catalog and cannot be deleted while held", async () => {
    const bad = await failure(call("putCustomRole", { tenantId: "ten_initech", name: "auditor", permissions: ["projects.read", "root.everything"], reason: "customer_request" }, as("stf_admin")));
    expect(bad.metadata.get("bulkhead-field")).toEqual(["permissions[1]"]);
    const builtIn = await failure(call("putCustomRole", { tenantId: "ten_initech", name: "owner", permissions: ["projects.read"], reason: "customer_request" }, as("stf_admin")));
    expect(builtIn.metadata.get("bulkhead-field")).toEqual(["name"]);
    await call("putCustomRole", { tenantId: "ten_initech", name: "auditor", permissions: ["projects.read"], reason: "customer_request" }, as("stf_admin"));
    await call("putMembership", { tenantId: "ten_initech", membership: { actorId: "usr_audit", role: "auditor" }, reason: "customer_request" }, as("stf_admin"));
    const held = await failure(call("deleteCustomRole", { tenantId: "ten_initech", name: "auditor", reason: "customer_request" }, as("stf_admin")));
    expect(held.code).toBe(status.FAILED_PRECONDITION);
    const elsewhere = await failure(call("putMembership", { tenantId: "ten_acme", membership: { actorId: "usr_audit", role: "auditor" }, reason: "customer_request" }, as("stf_admin")));
    expect(elsewhere.metadata.get("bulkhead-field")).toEqual(["membership.role"]);
  });
});

describe("tenant deletion", () => {
  it("needs the slug repeated, then denies every Check, revokes keys and ends sessions in one audited write", async () => {
    await call("putTenant", { tenantId: "ten_doomed", slug: "doomed", planCode: "free", reason: "onboarding" }, as("stf_admin"));
    await call("putMembership", { tenantId: "ten_doomed", membership: { actorId: "usr_d", role: "owner" }, reason: "onboarding" }, as("stf_admin"));
    const key = await call("createApiKey", { tenantId: "ten_doomed", name: "k", scopes: ["projects.read"], reason: "onboarding" }, as("stf_admin"));
    await call("startImpersonation", { tenantId: "ten_doomed", asActorId: "usr_d", ttlSeconds: 600, reason: "customer_request" }, as("stf_agent"));
    expect((await sidecar.check(checkRequest("ten_doomed", "usr_d", "projects.read"))).allow).toBe(true);

    const wrong = await failure(call("deleteTenant", { tenantId: "ten_doomed", confirmSlug: "acme", reason: "offboarding" }, as("stf_admin")));
    expect(wrong.metadata.get("bulkhead-field")).toEqual(["confirm_slug"]);
    const deleted = await call("deleteTenant", { tenantId: "ten_doomed", confirmSlug: "doomed", reason: "offboarding: contract ended" }, as("stf_admin"));
    expect(deleted).toMatchObject({ apiKeysRevoked: 1, impersonationsEnded: 1 });

    expect(codes(await sidecar.check(checkRequest("ten_doomed", "usr_d", "projects.read")))).toEqual(["tenant_suspended"]);
    const keyCheck = await sidecar.check({ principal: { apiKey: key.apiKey }, action: "projects.read", resource: { type: "project", id: "p", tenantId: "ten_doomed" } });
    expect(codes(keyCheck)).toEqual(["api_key_invalid"]);
    expect(codes(await staffCheck("ten_doomed", "stf_agent", "projects.read"))).toEqual(["not_a_member"]);
    const revive = await failure(call("putTenant", { tenantId: "ten_doomed", slug: "doomed", planCode: "free", reason: "customer_request" }, as("stf_admin")));
    expect(revive.code).toBe(status.FAILED_PRECONDITION);
    const audit = sidecar.bulkhead.db.prepare("SELECT count(*) FROM admin_audit WHERE action = 'tenant.delete' AND tenant_id = 'ten_doomed'").pluck().get();
    expect(audit).toBe(1);
  });
});
