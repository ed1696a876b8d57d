import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WatchChangesRequest, type Change } from "../../src/gen/bulkhead/v1/admin.js";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { checkRequest, codes, startSidecar, TEST_SYNC_TOKEN, type TestSidecar } from "../support/sidecar.js";
import { TEST_START, testClock } from "../support/test-time.js";

// Findings of an adversarial review of the staff guardrails (commit 1f35a32):
// each `it` is one confirmed attack, asserting the secure behaviour. All
// failed before the fixes that followed the review.
const START = TEST_START;
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let admin: ReturnType<typeof adminClient>;
const staff: Record<string, string> = {};

const as = (who: string) => adminAuth(staff[who] ?? who, "");
const sync = () => adminAuth(TEST_SYNC_TOKEN, "hris");
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e: ServiceError) => e);
const auditCount = () => sidecar.bulkhead.db.prepare("SELECT count(*) FROM admin_audit").pluck().get() as number;
const staffCheck = (tenantId: string, staffId: string, action: string) =>
  sidecar.check({ ...checkRequest(tenantId, staffId, action), principal: { tenantId, actorId: staffId, actorType: "staff", requestId: "req_staff" } });
const keyCheck = (apiKey: string, tenantId: string) =>
  sidecar.check({ principal: { apiKey }, action: "projects.read", resource: { type: "project", id: "p", tenantId } });

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
  admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  for (const [id, role] of [["stf_agent", "support_agent"], ["stf_agent2", "support_agent"], ["stf_admin", "support_admin"], ["stf_admin2", "support_admin"], ["stf_fin", "finance"], ["stf_eng", "engineer"], ["stf_eng2", "engineer"]]) {
    const created = await call<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding: new hire" });
    staff[id!] = created.token;
  }
});
afterAll(async () => {
  admin.client.close();
  await sidecar.close();
});

describe("staff review attacks", () => {
  it("sync credential deletes a tenant through PutTenant status=deleted (no tenants.delete, no confirm_slug, keys stay live)", async () => {
    await call("putTenant", { tenantId: "ten_syncdel", slug: "syncdel", planCode: "free", reason: "directory_sync" }, sync());
    const key = await call("createApiKey", { tenantId: "ten_syncdel", name: "k", scopes: ["projects.read"], reason: "onboarding" });
    const error = await failure(call("putTenant", { tenantId: "ten_syncdel", slug: "syncdel", planCode: "free", status: "deleted", reason: "directory_sync" }, sync()));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toContain("DeleteTenant");
    expect(sidecar.bulkhead.stores.directory.tenantById("ten_syncdel")!.status).not.toBe("deleted");
    // If it was deleted anyway, the deletion workflow's guarantees must still hold.
    const listed = await call("listApiKeys", { tenantId: "ten_syncdel" });
    expect(listed.keys.find((k: { keyId: string }) => k.keyId === key.keyId).state).toBe("active");
  });

  it("support_admin marks a tenant deleted via PutTenant without repeating the slug and without revoking its API keys", async () => {
    await call("putTenant", { tenantId: "ten_softdel", slug: "softdel", planCode: "free", reason: "onboarding" }, as("stf_admin"));
    const key = await call("createApiKey", { tenantId: "ten_softdel", name: "k", scopes: ["projects.read"], reason: "onboarding" }, as("stf_admin"));
    await call("putTenant", { tenantId: "ten_softdel", slug: "softdel", planCode: "free", status: "deleted", reason: "offboarding" }, as("stf_admin"))
      .catch(() => undefined);
    const tenant = sidecar.bulkhead.stores.directory.tenantById("ten_softdel")!;
    if (tenant.status === "deleted") {
      // A tenant that is deleted must have had its keys revoked in the same write.
      const listed = await call("listApiKeys", { tenantId: "ten_softdel" }, as("stf_agent"));
      expect(listed.keys.find((k: { keyId: string }) => k.keyId === key.keyId).state).toBe("revoked");
    }
    expect(tenant.status).not.toBe("deleted");
  });

  it("support_admin (no billing.write) creates a tenant on the enterprise plan", async () => {
    const error = await failure(
      call("putTenant", { tenantId: "ten_freebie", slug: "freebie", planCode: "enterprise", billingStatus: "active", reason: "onboarding" }, as("stf_admin")),
    );
    expect(error.code).toBe(status.PERMISSION_DENIED);
    expect(sidecar.bulkhead.stores.directory.tenantById("ten_freebie")).toBeUndefined();
  });

  it("rotating an already rotated-out (retired) API key brings the old secret back to life", async () => {
    const created = await call("createApiKey", { tenantId: "ten_acme", name: "leaky", scopes: ["projects.read"], reason: "customer_request" }, as("stf_admin"));
    await call("rotateApiKey", { tenantId: "ten_acme", keyId: created.keyId, overlapSeconds: 1, reason: "security: leaked" }, as("stf_admin"));
    clock.advance(2_000);
    expect(codes(await keyCheck(created.apiKey, "ten_acme"))).toEqual(["api_key_invalid"]);
    const huge = await failure(call("rotateApiKey", { tenantId: "ten_acme", keyId: created.keyId, overlapSeconds: 4_000_000_000, reason: "security" }, as("stf_admin")));
    expect(huge.metadata.get("bulkhead-field")).toEqual(["overlap_seconds"]);
    const again = await failure(call("rotateApiKey", { tenantId: "ten_acme", keyId: created.keyId, overlapSeconds: 3600, reason: "security" }, as("stf_admin")));
    expect(again.code).toBe(status.FAILED_PRECONDITION);
    expect(codes(await keyCheck(created.apiKey, "ten_acme"))).toEqual(["api_key_invalid"]);
  });

  it("a staff member moved to a role without 'impersonate' keeps the session, and gains that role's billing access (support_agent -> finance)", async () => {
    await call("startImpersonation", { tenantId: "ten_acme", asActorId: "usr_alice", ttlSeconds: 900, reason: "customer_request: ticket 1" }, as("stf_agent2"));
    expect(codes(await staffCheck("ten_acme", "stf_agent2", "billing.update"))).toEqual(["impersonation_restricted"]);
    await call("putStaff", { staffId: "stf_agent2", name: "stf_agent2", role: "finance", reason: "maintenance: team move" });
    const after = await staffCheck("ten_acme", "stf_agent2", "billing.update");
    expect(after.allow).toBe(false);
  });

  it("a disabled staff member's WatchChanges stream keeps delivering changes", async () => {
    const stream = admin.client.watchChanges(WatchChangesRequest.fromPartial({ afterRevision: sidecar.bulkhead.tracker.sync() }), as("stf_eng2"));
    const received: Change[] = [];
    let ended: ServiceError | null = null;
    stream.on("data", (c: Change) => received.push(c));
    stream.on("error", (e: ServiceError) => (ended = e));
    await new Promise((r) => setTimeout(r, 250));
    const disabled = await call("putStaff", { staffId: "stf_eng2", name: "stf_eng2", role: "engineer", status: "disabled", reason: "offboarding" });
    await call("putMembership", { tenantId: "ten_globex", membership: { actorId: "usr_after_disable", role: "viewer" }, reason: "customer_request" });
    await new Promise((r) => setTimeout(r, 600));
    const leaked = received.filter((c) => Number(c.revision) > Number(disabled.storeRevision));
    stream.cancel();
    expect(leaked).toEqual([]);
    expect(ended).not.toBeNull();
  });

  it("Consume answers allowed for a deleted tenant", async () => {
    await call("putTenant", { tenantId: "ten_gone", slug: "gone", planCode: "pro", reason: "onboarding" });
    await call("deleteTenant", { tenantId: "ten_gone", confirmSlug: "gone", reason: "offboarding" }, as("stf_admin"));
    const answer = await sidecar.entitlements
      .consume({ tenantId: "ten_gone", meter: "exports.csv.monthly", amount: 1, idempotencyKey: "after-delete-1" })
      .catch(() => ({ allowed: false }));
    expect(answer.allowed).toBe(false);
  });

  it("PutUser spends a two-person approval without any admin_audit record when the profile is unchanged", async () => {
    const carol = sidecar.bulkhead.stores.directory.user("usr_carol")!;
    const approval = await call("requestApproval", { putUser: { userId: "usr_carol", email: carol.email, displayName: carol.displayName }, reason: "customer_request" }, as("stf_admin"));
    // The second person may make the change themselves (ADR 79): another support admin.
    await call("approve", { approvalId: approval.approvalId, reason: "customer_request" }, as("stf_admin2"));
    const audits = auditCount();
    await call("putUser", { tenantId: "ten_acme", userId: "usr_carol", email: carol.email, displayName: carol.displayName, allTenants: true, approvalId: approval.approvalId, reason: "customer_request" }, as("stf_admin"));
    const usedAt = sidecar.bulkhead.db.prepare("SELECT used_at FROM approvals WHERE id = ?").pluck().get(approval.approvalId);
    // Either the no-op does not spend the approval, or spending it is audited.
    expect(usedAt === null || auditCount() > audits).toBe(true);
  });

  it("revoking an already revoked API key writes an audit row and a revision for a change that did not happen", async () => {
    const created = await call("createApiKey", { tenantId: "ten_acme", name: "twice", scopes: ["projects.read"], reason: "customer_request" }, as("stf_admin"));
    await call("revokeApiKey", { tenantId: "ten_acme", keyId: created.keyId, reason: "security" }, as("stf_admin"));
    const audits = auditCount();
    const revision = sidecar.bulkhead.tracker.sync();
    const again = await call("revokeApiKey", { tenantId: "ten_acme", keyId: created.keyId, reason: "security" }, as("stf_admin"));
    expect(again.changed).toBe(false);
    expect(auditCount()).toBe(audits);
    expect(sidecar.bulkhead.tracker.sync()).toBe(revision);
  });

  it("a shared (bootstrap) credential writes without naming the person in bulkhead-actor, audited as plain 'bootstrap'", async () => {
    const anonymous = adminAuth(undefined, "");
    const error = await failure(call("putTenant", { tenantId: "ten_globex", slug: "globex", planCode: "free", region: "us", reason: "maintenance" }, anonymous));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["bulkhead-actor"]);
  });

  it("a billing status outside the known vocabulary is accepted (even from bootstrap) instead of INVALID_ARGUMENT naming billing_status", async () => {
    const error = await failure(call("putTenant", { tenantId: "ten_initech", slug: "initech", planCode: "pro", billingStatus: "bogus_status", reason: "billing_correction" }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["billing_status"]);
  });
});
