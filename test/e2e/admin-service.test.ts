import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type AdminServiceClient,
  PutMembershipRequest,
  PutTenantRequest,
  RemoveMembershipRequest,
  SyncMembershipsRequest,
  WatchChangesRequest,
  type Change,
} from "../../src/gen/bulkhead/v1/admin.js";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { checkRequest, codes, startSidecar, TEST_ADMIN_TOKEN, type TestSidecar } from "../support/sidecar.js";

// AdminService end to end: directory writes through the real gRPC API, then
// the very next Check, with min_revision as the read-your-writes token.
let sidecar: TestSidecar;
let admin: AdminServiceClient;
const auth = (token = TEST_ADMIN_TOKEN) => adminAuth(token);
let call: AdminCall;

beforeAll(async () => {
  sidecar = await startSidecar();
  ({ client: admin, call } = adminClient(sidecar.grpcAddress));
});
afterAll(async () => {
  admin.close();
  await sidecar.close();
});

const auditCount = () => sidecar.bulkhead.db.prepare("SELECT count(*) FROM admin_audit").pluck().get() as number;
const sync = (tenantId: string, memberships: { actorId: string; role: string; status?: string }[], reason = "directory_sync") =>
  call<{ storeRevision: number; added: number; updated: number; removed: number }>(
    "syncMemberships", SyncMembershipsRequest.fromPartial({ tenantId, memberships, reason }),
  );

describe("AdminService", () => {
  it("rejects calls without the admin credential, and the decision callers' credential is not it", async () => {
    const none = await call("putTenant", PutTenantRequest.fromPartial({ tenantId: "ten_x", slug: "x", planCode: "free", reason: "customer_request" }), new Metadata()).catch((e) => e);
    expect(none.code).toBe(status.UNAUTHENTICATED);
    const wrong = await call("putTenant", PutTenantRequest.fromPartial({ tenantId: "ten_x", slug: "x", planCode: "free", reason: "customer_request" }), auth("not-it")).catch((e) => e);
    expect(wrong.code).toBe(status.UNAUTHENTICATED);
  });

  it("applies a role downgrade made through the API to the next Check", async () => {
    expect((await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.delete"))).allow).toBe(true);
    const write = await call<{ storeRevision: number }>("putMembership", PutMembershipRequest.fromPartial({
      tenantId: "ten_globex", membership: { actorId: "usr_carol", role: "viewer" }, reason: "customer_request: role review",
    }));
    const after = await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.delete", "ten_globex", { minRevision: write.storeRevision }));
    expect(codes(after)).toEqual(["missing_permission"]);
  });

  it("denies at once after a membership is removed", async () => {
    expect((await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.read"))).allow).toBe(true);
    await call("removeMembership", RemoveMembershipRequest.fromPartial({ tenantId: "ten_acme", actorId: "usr_bob", reason: "offboarding" }));
    expect(codes(await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.read")))).toEqual(["not_a_member"]);
  });

  it.each([
    ["reason", { tenantId: "ten_acme", membership: { actorId: "usr_new", role: "viewer" }, reason: "" }],
    ["reason", { tenantId: "ten_acme", membership: { actorId: "usr_new", role: "viewer" }, reason: "because I said so" }],
    ["tenant_id", { tenantId: "", membership: { actorId: "usr_new", role: "viewer" }, reason: "customer_request" }],
    ["membership.role", { tenantId: "ten_acme", membership: { actorId: "usr_new", role: "superuser" }, reason: "customer_request" }],
    ["tenant_id", { tenantId: "ten_nowhere", membership: { actorId: "usr_new", role: "viewer" }, reason: "customer_request" }],
  ])("rejects a write with a bad %s and writes nothing", async (field, request) => {
    const revision = sidecar.bulkhead.tracker.sync();
    const audits = auditCount();
    const error = await call("putMembership", PutMembershipRequest.fromPartial(request)).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual([field]);
    expect(sidecar.bulkhead.tracker.sync()).toBe(revision);
    expect(auditCount()).toBe(audits);
    expect(sidecar.bulkhead.stores.directory.membership("ten_acme", "usr_new")).toBeUndefined();
  });

  it("audits every write with actor, tenant, object, action and reason in the same transaction", async () => {
    await call("putTenant", PutTenantRequest.fromPartial({ tenantId: "ten_audited", slug: "audited", planCode: "pro", reason: "onboarding: new customer" }));
    const row = sidecar.bulkhead.db.prepare("SELECT actor, tenant_id, object, action, reason, source, result FROM admin_audit WHERE object = 'tenant:ten_audited'").get();
    expect(row).toEqual({ actor: "bootstrap:usr_ops", tenant_id: "ten_audited", object: "tenant:ten_audited", action: "tenant.put", reason: "onboarding: new customer", source: "admin_api", result: "ok" });
    const taken = await call("putTenant", PutTenantRequest.fromPartial({ tenantId: "ten_other", slug: "audited", planCode: "pro", reason: "customer_request" })).catch((e) => e);
    expect(taken.metadata.get("bulkhead-field")).toEqual(["slug"]);
  });

  it("syncs memberships idempotently: the same list twice is one change", async () => {
    await call("putTenant", PutTenantRequest.fromPartial({ tenantId: "ten_sync", slug: "sync", planCode: "pro", reason: "onboarding" }));
    const list = [{ actorId: "usr_s1", role: "owner" }, { actorId: "usr_s2", role: "member" }, { actorId: "usr_s3", role: "viewer", status: "invited" }];
    const first = await sync("ten_sync", list);
    expect(first).toMatchObject({ added: 3, updated: 0, removed: 0 });
    const again = await sync("ten_sync", list);
    expect(again).toMatchObject({ added: 0, updated: 0, removed: 0, storeRevision: first.storeRevision });
    const changed = await sync("ten_sync", [{ actorId: "usr_s1", role: "owner" }, { actorId: "usr_s2", role: "viewer" }]);
    expect(changed).toMatchObject({ added: 0, updated: 1, removed: 1 });
    expect(codes(await sidecar.check(checkRequest("ten_sync", "usr_s3", "projects.read")))).toEqual(["not_a_member"]);
    const dup = await sync("ten_sync", [{ actorId: "usr_s1", role: "owner" }, { actorId: "usr_s1", role: "viewer" }]).catch((e) => e);
    expect(dup.metadata.get("bulkhead-field")).toEqual(["memberships[1].actor_id"]);
  });

  it("streams every change in revision order with WatchChanges", async () => {
    const start = sidecar.bulkhead.tracker.sync();
    const stream = admin.watchChanges(WatchChangesRequest.fromPartial({ afterRevision: start, tenantId: "ten_watch" }), auth());
    const received: Change[] = [];
    stream.on("data", (c: Change) => received.push(c));
    stream.on("error", () => {});
    await call("putTenant", PutTenantRequest.fromPartial({ tenantId: "ten_watch", slug: "watch", planCode: "free", reason: "onboarding" }));
    for (let i = 0; i < 5; i++) {
      await call("putMembership", PutMembershipRequest.fromPartial({ tenantId: "ten_watch", membership: { actorId: `usr_w${i}`, role: "viewer" }, reason: "customer_request: invite" }));
    }
    await call("putMembership", PutMembershipRequest.fromPartial({ tenantId: "ten_acme", membership: { actorId: "usr_elsewhere", role: "viewer" }, reason: "maintenance: not watched" }));
    for (let i = 0; i < 40 && received.length < 6; i++) await new Promise((r) => setTimeout(r, 25));
    stream.cancel();
    const revisions = received.map((c) => c.revision);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
    expect(received.filter((c) => c.kind === "membership")).toHaveLength(5);
    expect(received.every((c) => c.tenantId === "ten_watch" || c.tenantId === "")).toBe(true);
  });
});
