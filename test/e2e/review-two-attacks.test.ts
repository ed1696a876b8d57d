import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approvalAction } from "../../src/identity/approvals.js";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { checkRequest, codes, startSidecar, TEST_SYNC_TOKEN, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Findings of the second adversarial review (issue 14), driven through the
// public surfaces: each `it` is one attack, asserting the secure behaviour.
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let admin: ReturnType<typeof adminClient>;
const staff: Record<string, string> = {};

const as = (who: string) => adminAuth(staff[who] ?? who, "");
const sync = () => adminAuth(TEST_SYNC_TOKEN, "hris");
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e: ServiceError) => e);

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
  admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  for (const [id, role] of [["stf_fin", "finance"], ["stf_fin2", "finance"], ["stf_eng", "engineer"], ["stf_admin", "support_admin"], ["stf_agent", "support_agent"]]) {
    const created = await call<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding: new hire" });
    staff[id!] = created.token;
  }
});
afterAll(async () => {
  admin.client.close();
  await sidecar.close();
});

describe("approvals cover exactly the content approved (item 1)", () => {
  const benign = { planCode: "starter", name: "Starter", entitlements: ["projects"], limits: [{ meter: "seats", hard: 5 }] };
  const malicious = { planCode: "starter", name: "Starter", entitlements: ["projects", "sso", "audit_export"], limits: [] };

  it("an approval whose action names another plan's digest still cannot carry that plan", async () => {
    const approval = await call("requestApproval", { putPlan: benign, reason: "maintenance: starter plan" }, as("stf_fin"));
    expect(approval.action).toMatch(/^plan\.put:starter@[0-9a-f]{64}$/);
    await call("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin2"));
    // What a digest collision would give an insider: the stored action equal to the malicious plan's.
    const colliding = approvalAction("plan.put", "starter", { code: "starter", name: "Starter", entitlements: malicious.entitlements, limits: [] });
    sidecar.bulkhead.db.prepare("UPDATE approvals SET action = ? WHERE id = ?").run(colliding, approval.approvalId);
    const spent = await failure(call("putPlan", { ...malicious, allTenants: true, approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin")));
    expect(spent.code).toBe(status.FAILED_PRECONDITION);
    expect(spent.details).toContain("differs from what was approved");
    expect(sidecar.bulkhead.stores.entitlements.plan("starter")).toBeUndefined();
  });

  it("the same content in another field order is the same approval", async () => {
    const approval = await call("requestApproval", { putPlan: benign, reason: "maintenance: starter plan" }, as("stf_fin"));
    await call("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin2"));
    const reordered = { limits: benign.limits, entitlements: benign.entitlements, name: benign.name, planCode: benign.planCode };
    const written = await call("putPlan", { ...reordered, allTenants: true, approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin"));
    expect(written.changed).toBe(true);
  });

  it("names reject invisible and confusable characters, so two plans cannot look the same", async () => {
    for (const name of ["Starter\u200b", "Sta\u202erter", "\ufeffStarter", "Ｓtarter", "Starter\u2028"]) {
      const refused = await failure(call("requestApproval", { putPlan: { ...benign, name }, reason: "maintenance" }, as("stf_fin")));
      expect(refused.code, JSON.stringify(name)).toBe(status.INVALID_ARGUMENT);
      expect(refused.metadata.get("bulkhead-field")).toEqual(["name"]);
    }
    const user = await failure(call("putUser", { tenantId: "ten_acme", userId: "usr_alice", email: "alice@example.com", displayName: "Alice\u200d", reason: "customer_request" }, as("stf_admin")));
    expect(user.metadata.get("bulkhead-field")).toEqual(["display_name"]);
    // Letters of other scripts are names too: only invisible and compatibility forms are refused.
    const accented = await call("putUser", { tenantId: "ten_acme", userId: "usr_alice", email: "alice@example.com", displayName: "Alicé Müller-Łukasz 李", reason: "customer_request" }, as("stf_admin"));
    expect(accented.changed).toBe(true);
  });
});

describe("ResolveContext through an impersonation session (item 2)", () => {
  const asStaff = (staffId: string) => ({ tenantId: "ten_acme", actorId: staffId, actorType: "staff", requestId: "req_ctx" });

  it("gives only the permissions Check would allow, marks the session and logs the call", async () => {
    const session = await call("startImpersonation", { tenantId: "ten_acme", asActorId: "usr_alice", ttlSeconds: 300, reason: "customer_request: ticket 12" }, as("stf_agent"));
    const owner = await sidecar.resolveContext({ principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId: "req_owner" } });
    const seen = await sidecar.resolveContext({ principal: asStaff("stf_agent") });
    expect(seen.membershipRole).toBe("owner");
    expect(seen.impersonation).toEqual({ sessionId: session.sessionId, staffId: "stf_agent", staffRole: "support_agent", asActorId: "usr_alice", expiresAt: session.expiresAt });
    expect(seen.permissions).toContain("projects.read");
    expect(owner.permissions).toContain("projects.create");
    // Every permission the context grants is one Check allows the agent (read access only).
    for (const permission of owner.permissions.filter((p) => !seen.permissions.includes(p))) {
      const denied = await sidecar.check({ ...checkRequest("ten_acme", "stf_agent", permission), principal: asStaff("stf_agent") });
      if (!denied.allow) expect(codes(denied), permission).toContain("impersonation_restricted");
    }
    for (const permission of ["projects.create", "projects.delete"]) expect(seen.permissions).not.toContain(permission);
    const write = await sidecar.check({ ...checkRequest("ten_acme", "stf_agent", "projects.create"), principal: asStaff("stf_agent") });
    expect(codes(write)).toContain("impersonation_restricted");

    sidecar.bulkhead.decisionLog.flush();
    const logged = sidecar.bulkhead.db
      .prepare("SELECT actor_id, actor_type, impersonation FROM decision_log WHERE action = 'bulkhead.resolve_context' AND request_id = 'req_ctx'")
      .all() as { actor_id: string; actor_type: string; impersonation: string }[];
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ actor_id: "stf_agent", actor_type: "staff" });
    expect(JSON.parse(logged[0]!.impersonation)).toMatchObject({ session_id: session.sessionId, staff_id: "stf_agent" });
    // A member's own context is not marked and keeps every permission.
    expect(owner.impersonation).toBeUndefined();
  });
});

describe("the shared-user rule cannot be walked around by reshaping memberships (item 3)", () => {
  // usr_carol is admin in ten_globex and viewer in ten_acme (demo data).
  for (const [who, auth] of [["a staff member", () => as("stf_admin")], ["the sync credential", sync]] as const) {
    it(`${who}: remove the other membership, change the user, re-add it: refused at the change`, async () => {
      const email = sidecar.bulkhead.stores.directory.user("usr_carol")!.email;
      await call("removeMembership", { tenantId: "ten_acme", actorId: "usr_carol", reason: "directory_sync" }, auth());
      const refused = await failure(call("putUser", { tenantId: "ten_globex", userId: "usr_carol", email: "attacker@evil.example", reason: "directory_sync" }, auth()));
      expect(refused.code).toBe(status.FAILED_PRECONDITION);
      expect(refused.metadata.get("bulkhead-field")).toEqual(["all_tenants"]);
      await call("putMembership", { tenantId: "ten_acme", membership: { actorId: "usr_carol", role: "viewer" }, reason: "directory_sync" }, auth());
      expect(sidecar.bulkhead.stores.directory.user("usr_carol")!.email).toBe(email);
    });
  }

  it("a user who only ever belonged to one tenant is still changed by that tenant alone", async () => {
    await call("putUser", { tenantId: "ten_acme", userId: "usr_solo", email: "solo@acme.example", reason: "onboarding" }, as("stf_admin"));
    await call("putMembership", { tenantId: "ten_acme", membership: { actorId: "usr_solo", role: "member" }, reason: "onboarding" }, as("stf_admin"));
    const changed = await call("putUser", { tenantId: "ten_acme", userId: "usr_solo", email: "solo2@acme.example", reason: "customer_request" }, as("stf_admin"));
    expect(changed.changed).toBe(true);
  });
});
