import { status } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, type AdminCall } from "../support/admin-client.js";
import type { NatsCluster } from "../support/nats-cluster.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import { checkRequest, codes, TEST_SYNC_TOKEN, type TestSidecar } from "../support/sidecar.js";
import { MINUTE, testClock } from "../support/test-time.js";
import { consoleClient } from "../support/console-client.js";
import { TEST_ADMIN_TOKEN } from "../support/sidecar.js";

// Tenant and override admin writes as commands (ADR 75): three real
// sidecars, each with its own SQLite file, on one real three-node JetStream
// cluster. A write made on one sidecar is applied on all, with its audit row.
const STREAM = "BULKHEAD_TENANTCMD";
const clock = testClock();
let cluster: NatsCluster;
let sidecars: TestSidecar[] = [];
let admins: AdminCall[] = [];
let closeAll = async () => {};

beforeAll(async () => {
  ({ cluster, sidecars, admins, close: closeAll } = await startReplicatedSidecars({ clock, stream: STREAM, config: { console: true } }));
}, 120_000);

afterAll(() => closeAll());

const [A, B, C] = [0, 1, 2];
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e) => e);
const auditRows = (s: TestSidecar) =>
  s.bulkhead.db.prepare("SELECT actor, tenant_id, object, action, reason, source FROM admin_audit ORDER BY rowid").all();
/** The stream's last sequence: what was appended, whatever any sidecar applied. */
async function streamEnd(): Promise<number> {
  const nc = await connect({ servers: cluster.urls() });
  try {
    return (await (await jetstreamManager(nc)).streams.info(STREAM)).state.last_seq;
  } finally {
    await nc.close();
  }
}
const tenantRequest = async (admin: AdminCall, tenantId: string) => {
  const t = await admin<Record<string, unknown>>("getTenant", { tenantId });
  return { tenantId, slug: t.slug, name: t.name, planCode: t.planCode, status: t.status, billingStatus: t.billingStatus, region: t.region, isolationTier: t.isolationTier, tags: t.tags };
};

describe("tenant and override writes from any sidecar", () => {
  it("a tenant suspended on sidecar A is denied on C with min_revision", async () => {
    const read = checkRequest("ten_acme", "usr_alice", "projects.read");
    expect((await sidecars[C]!.check(read)).allow).toBe(true);
    const suspended = await admins[A]!<{ storeRevision: number }>("putTenant", {
      ...(await tenantRequest(admins[A]!, "ten_acme")), status: "suspended", reason: "customer_request: suspend",
    });
    const answer = await sidecars[C]!.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: suspended.storeRevision }));
    expect(answer.allow).toBe(false);
    expect(codes(answer)).toContain("tenant_suspended");
    // Active again from B: back to allow on A.
    const active = await admins[B]!<{ storeRevision: number }>("putTenant", {
      ...(await tenantRequest(admins[B]!, "ten_acme")), status: "active", reason: "customer_request: reactivate",
    });
    expect(active.storeRevision).toBeGreaterThan(suspended.storeRevision);
    expect((await sidecars[A]!.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: active.storeRevision }))).allow).toBe(true);
  });

  it("an override put on B grants on A and C and expires at the same instant on all", async () => {
    const analytics = (minRevision = 0) => checkRequest("ten_globex", "usr_carol", "analytics.view", "ten_globex", { minRevision });
    for (const s of sidecars) expect(codes(await s.check(analytics()))).toEqual(["not_in_plan"]);
    const expiresAt = clock.now() + 10 * MINUTE;
    const put = await admins[B]!<{ storeRevision: number; overrideId: number }>("putOverride", {
      tenantId: "ten_globex", entitlement: "analytics.pro", effect: "grant", expiresAt: new Date(expiresAt).toISOString(), reason: "customer_request: trial",
    });
    expect(put.overrideId).toBeGreaterThan(0);
    for (const s of sidecars) {
      expect((await s.check(analytics(put.storeRevision))).allow).toBe(true);
      // The same row everywhere: the id and expiry come from the entry, not the applying sidecar.
      const rows = s.bulkhead.db.prepare("SELECT id, expires_at FROM entitlement_overrides WHERE tenant_id = 'ten_globex'").all();
      expect(rows).toEqual([{ id: put.overrideId, expires_at: expiresAt }]);
    }
    clock.set(expiresAt - 1);
    for (const s of sidecars) expect((await s.check(analytics(put.storeRevision))).allow).toBe(true);
    clock.set(expiresAt);
    for (const s of sidecars) expect(codes(await s.check(analytics(put.storeRevision)))).toEqual(["not_in_plan"]);
  });

  it("an override removed on C is gone on A and B", async () => {
    const expiresAt = clock.now() + 10 * MINUTE;
    const put = await admins[A]!<{ storeRevision: number; overrideId: number }>("putOverride", {
      tenantId: "ten_globex", entitlement: "analytics.pro", effect: "grant", expiresAt: new Date(expiresAt).toISOString(), reason: "customer_request: trial",
    });
    const removed = await admins[C]!<{ storeRevision: number }>("removeOverride", { tenantId: "ten_globex", overrideId: put.overrideId, reason: "customer_request: end trial" });
    for (const s of [sidecars[A]!, sidecars[B]!]) {
      expect(codes(await s.check(checkRequest("ten_globex", "usr_carol", "analytics.view", "ten_globex", { minRevision: removed.storeRevision })))).toEqual(["not_in_plan"]);
    }
  });

  it("an override whose expiry is already past is refused, appends nothing and is stored nowhere", async () => {
    const appended = await streamEnd();
    const overrides = (s: TestSidecar) => s.bulkhead.db.prepare("SELECT count(*) FROM entitlement_overrides").pluck().get();
    const before = sidecars.map(overrides);
    const error = await failure(admins[A]!("putOverride", {
      tenantId: "ten_globex", entitlement: "analytics.pro", effect: "grant", expiresAt: new Date(clock.now() - MINUTE).toISOString(), reason: "customer_request",
    }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["expires_at"]);
    expect(await streamEnd()).toBe(appended);
    expect(sidecars.map(overrides)).toEqual(before);
  });

  it("a write without the capability (the directory-sync credential changing a plan) is refused and appends nothing", async () => {
    const before = await streamEnd();
    const request = { ...(await tenantRequest(admins[A]!, "ten_acme")), planCode: "free", reason: "customer_request: downgrade" };
    const error = await failure(admins[A]!("putTenant", request, adminAuth(TEST_SYNC_TOKEN, "usr_sync")));
    expect(error.code).toBe(status.PERMISSION_DENIED);
    expect(error.details).toMatch(/billing\.write/);
    const overrideError = await failure(admins[B]!("putOverride", {
      tenantId: "ten_acme", entitlement: "sso", effect: "grant", reason: "customer_request",
    }, adminAuth(TEST_SYNC_TOKEN, "usr_sync")));
    expect(overrideError.code).toBe(status.PERMISSION_DENIED);
    expect(await streamEnd()).toBe(before);
    for (const s of sidecars) expect(s.bulkhead.stores.directory.tenantById("ten_acme")?.planCode).not.toBe("free");
  });

  it("PutPlan: requested on A, approved by another finance member on B, carried out on C, the plan is on every sidecar", async () => {
    const tokens: Record<string, string> = {};
    for (const id of ["stf_fin1", "stf_fin2"]) {
      tokens[id] = (await admins[A]!<{ token: string }>("putStaff", { staffId: id, name: id, role: "finance", issueToken: true, reason: "onboarding: new hire" })).token;
    }
    const as = (id: string) => adminAuth(tokens[id]!, "");
    const plan = { planCode: "team", name: "Team", entitlements: ["projects"] };
    const unapproved = await failure(admins[C]!("putPlan", { ...plan, allTenants: true, reason: "maintenance" }, as("stf_fin1")));
    expect(unapproved.details).toMatch(/approval/);
    const approval = await admins[A]!<{ approvalId: string }>("requestApproval", { putPlan: plan, reason: "maintenance: new plan" }, as("stf_fin1"));
    await admins[B]!("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin2"));
    const put = await admins[C]!<{ storeRevision: number }>("putPlan", { ...plan, allTenants: true, approvalId: approval.approvalId, reason: "maintenance: new plan" }, as("stf_fin1"));
    for (const s of sidecars) {
      await s.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: put.storeRevision }));
      expect(s.bulkhead.stores.entitlements.plan("team")?.name).toBe("Team");
    }
    // Spent: the same approval cannot carry a second write, on any sidecar.
    const again = await failure(admins[B]!("putPlan", { ...plan, allTenants: true, approvalId: approval.approvalId, reason: "maintenance" }, as("stf_fin1")));
    expect(again.code).not.toBe(status.OK);
  });

  it("DeleteTenant on C revokes everywhere", async () => {
    const read = checkRequest("ten_globex", "usr_carol", "projects.read");
    for (const s of sidecars) expect((await s.check(read)).allow).toBe(true);
    const deleted = await admins[C]!<{ storeRevision: number }>("deleteTenant", { tenantId: "ten_globex", confirmSlug: "globex", reason: "customer_request: close account" });
    for (const s of sidecars) {
      const answer = await s.check(checkRequest("ten_globex", "usr_carol", "projects.read", "ten_globex", { minRevision: deleted.storeRevision }));
      expect(answer.allow).toBe(false);
      expect(s.bulkhead.stores.directory.tenantById("ten_globex")?.status).toBe("deleted");
    }
  });

  it("a console tenant selection and audit export on B are audited commands: every sidecar has their rows", async () => {
    const c = consoleClient(sidecars[B]!.httpPort);
    expect(await c.login(TEST_ADMIN_TOKEN, "usr_ops")).toBe(303);
    const selected = await c.post("/console/tenants/ten_acme/select", { reason_code: "customer_request", reason_text: "ticket 7" });
    expect(selected.location).toBe("/console/tenants/ten_acme");
    expect((await c.get("/console/tenants/ten_acme")).status).toBe(200);
    const exported = await c.post("/console/audit/export", { reason_code: "customer_request", reason_text: "export 3" });
    expect(exported.status).toBe(200);
    const end = await streamEnd();
    for (const s of sidecars) {
      await s.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: end }));
      const row = s.bulkhead.db.prepare("SELECT actor, reason, source FROM admin_audit WHERE action = 'tenant.select'").get();
      expect(row).toEqual({ actor: "bootstrap:usr_ops", reason: "customer_request: ticket 7", source: "console" });
      // The export is an audited access too (audit.export), a command like the selection.
      const exportRow = s.bulkhead.db.prepare("SELECT actor, reason, source FROM admin_audit WHERE action = 'audit.export'").get();
      expect(exportRow).toEqual({ actor: "bootstrap:usr_ops", reason: "customer_request: export 3", source: "console" });
    }
  });

  it("every sidecar has the same admin_audit rows", async () => {
    const end = await streamEnd();
    for (const s of sidecars) await s.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: end }));
    const rows = auditRows(sidecars[A]!);
    expect(rows.map((r) => (r as { action: string }).action)).toEqual([
      "tenant.put", "tenant.put", "override.grant", "override.grant", "override.remove", "staff.put", "staff.put", "approval.request", "approval.approve", "plan.put", "tenant.delete", "tenant.select", "audit.export",
    ]);
    for (const s of [sidecars[B]!, sidecars[C]!]) expect(auditRows(s)).toEqual(rows);
  });
});
