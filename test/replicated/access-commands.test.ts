import { status } from "@grpc/grpc-js";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, type AdminCall } from "../support/admin-client.js";
import type { NatsCluster } from "../support/nats-cluster.js";
import { startReplicatedSidecars, withKeySecret } from "../support/replicated-sidecars.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Access admin writes as commands (issue 13, ADRs 76-77): API keys, staff,
// approvals and impersonation written on one sidecar hold on every sidecar;
// three real sidecars, each with its own SQLite file, on a real three-node
// JetStream cluster.
const STREAM = "BULKHEAD_ACCESS";
const clock = testClock();
let cluster: NatsCluster;
let sidecars: TestSidecar[] = [];
let admins: AdminCall[] = [];
let closeAll = async () => {};
/** Every raw secret a test was handed, to look for in the log at the end. */
const rawSecrets: string[] = [];
const staff: Record<string, string> = {};
const as = (who: string) => adminAuth(staff[who]!, "");

beforeAll(async () => {
  ({ cluster, sidecars, admins, close: closeAll } = await startReplicatedSidecars({ clock, stream: STREAM, config: { impersonationMaxTtlSeconds: 900 } }));
  // Staff issued on A: their tokens work on every sidecar (the first test checks on B).
  for (const [id, role] of [["stf_agent", "support_agent"], ["stf_eng", "engineer"], ["stf_eng2", "engineer"]] as const) {
    const created = await admins[A]!<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding: new hire" });
    staff[id] = created.token;
    rawSecrets.push(created.token);
  }
  await sidecars[A]!.bulkhead.replication!.catchUp();
}, 120_000);

afterAll(() => closeAll());

const [A, B, C] = [0, 1, 2];
const keyCheck = (s: TestSidecar, apiKey: string, minRevision = 0) =>
  s.check({ principal: { apiKey }, action: "projects.read", resource: { type: "project", id: "p1", tenantId: "ten_acme" }, minRevision });
/** Waits until every sidecar has applied everything the log holds now. */
const settle = async () => {
  const head = await sidecars[A]!.bulkhead.replication!.catchUp();
  for (const s of sidecars) await s.bulkhead.replication!.catchUp();
  return head;
};

describe("API keys from any sidecar", () => {
  it("a key created on A authenticates on B and C after min_revision, and stops on all after a revoke on C", async () => {
    const created = await admins[A]!<{ keyId: string; apiKey: string; storeRevision: number }>("createApiKey", {
      tenantId: "ten_acme", name: "ci", scopes: ["projects.read"], reason: "customer_request",
    });
    rawSecrets.push(created.apiKey);
    for (const s of sidecars) expect((await keyCheck(s, created.apiKey, created.storeRevision)).allow).toBe(true);
    // Every sidecar stored the same key id and hash (minted once, on A).
    const hashes = sidecars.map((s) => s.bulkhead.db.prepare("SELECT secret_hash FROM api_keys WHERE id = ?").pluck().get(created.keyId));
    expect(new Set(hashes).size).toBe(1);
    expect(hashes[0]).toBeTruthy();

    // Another tenant's key id is refused like a missing one, and revokes nothing.
    const wrongTenant = await admins[C]!("revokeApiKey", { tenantId: "ten_globex", keyId: created.keyId, reason: "security" }).catch((e) => e);
    expect(wrongTenant.code).toBe(status.NOT_FOUND);
    expect((await keyCheck(sidecars[B]!, created.apiKey, await settle())).allow).toBe(true);

    const revoked = await admins[C]!<{ storeRevision: number }>("revokeApiKey", { tenantId: "ten_acme", keyId: created.keyId, reason: "security: leaked" });
    for (const s of sidecars) expect(codes(await keyCheck(s, created.apiKey, revoked.storeRevision))).toEqual(["api_key_invalid"]);
    for (const s of sidecars) {
      const actions = s.bulkhead.db.prepare("SELECT action FROM admin_audit WHERE object IN ('api_key', ?) ORDER BY rowid").pluck().all(`api_key:${created.keyId}`);
      expect(actions).toEqual(["api_key.create", "api_key.revoke"]);
    }
  });

  it("a key rotated on B keeps the old one working for the overlap on every sidecar, then only the new one", async () => {
    const old = await admins[A]!<{ keyId: string; apiKey: string }>("createApiKey", { tenantId: "ten_acme", name: "deploy", scopes: ["projects.read"], reason: "customer_request" });
    const rotated = await admins[B]!<{ keyId: string; apiKey: string; storeRevision: number }>("rotateApiKey", {
      tenantId: "ten_acme", keyId: old.keyId, overlapSeconds: 60, reason: "security: rotation",
    });
    rawSecrets.push(old.apiKey, rotated.apiKey);
    expect(rotated.apiKey).not.toBe(old.apiKey);
    for (const s of sidecars) {
      expect((await keyCheck(s, old.apiKey, rotated.storeRevision)).allow).toBe(true);
      expect((await keyCheck(s, rotated.apiKey, rotated.storeRevision)).allow).toBe(true);
    }
    const start = clock.now();
    clock.set(start + 60_000);
    try {
      for (const s of sidecars) {
        expect(codes(await keyCheck(s, old.apiKey))).toEqual(["api_key_invalid"]);
        expect((await keyCheck(s, rotated.apiKey)).allow).toBe(true);
      }
    } finally {
      clock.set(start);
    }
  });
});

describe("staff from any sidecar", () => {
  it("a staff token issued on A works on B; a token that was never issued does not", async () => {
    const found = await admins[B]!<{ tenants: unknown[] }>("searchTenants", { query: "glo" }, as("stf_agent"));
    expect(found.tenants).toHaveLength(1);
    const forged = await admins[B]!("searchTenants", { query: "glo" }, adminAuth(`bk_staff_${"A".repeat(43)}`, "")).catch((e) => e);
    expect(forged.code).toBe(status.UNAUTHENTICATED);
  });
});

describe("approvals across sidecars", () => {
  const risky = (percentage: number) => JSON.stringify({
    key: "risky_billing", kind: "release", owner: "team-billing", risk: "high", description: "new billing path",
    cleanupAt: "2027-03-31", rules: [{ rule: "percentage", params: { percentage } }],
  });

  it("requested on A, approved by another staff member on B, lets a high-risk full rollout run on C", async () => {
    await admins[A]!("putFlag", { flagJson: risky(5), reason: "maintenance" }, as("stf_eng"));
    const refused = await admins[C]!("putFlag", { flagJson: risky(100), reason: "maintenance" }, as("stf_eng")).catch((e) => e);
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    const approval = await admins[A]!<{ approvalId: string }>("requestApproval", { putFlag: { flagJson: risky(100) }, reason: "maintenance: full rollout" }, as("stf_eng"));
    await settle();
    // Every sidecar stored the approval under the id A answered with.
    for (const s of sidecars) expect(s.bulkhead.db.prepare("SELECT requested_by FROM approvals WHERE id = ?").pluck().get(approval.approvalId)).toBe("staff:stf_eng");

    const self = await admins[B]!("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_eng")).catch((e) => e);
    expect(self.code).toBe(status.FAILED_PRECONDITION);
    expect(self.details).toContain("different person");
    const notYet = await admins[C]!("putFlag", { flagJson: risky(100), approvalId: approval.approvalId, reason: "maintenance" }, as("stf_eng")).catch((e) => e);
    expect(notYet.details).toContain("not been approved");
    await admins[B]!("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_eng2"));
    await settle();

    const written = await admins[C]!<{ changed: boolean; storeRevision: number }>("putFlag", {
      flagJson: risky(100), approvalId: approval.approvalId, reason: "maintenance: full rollout",
    }, as("stf_eng"));
    expect(written.changed).toBe(true);
    await settle();
    for (const s of sidecars) {
      expect(s.bulkhead.db.prepare("SELECT approved_by FROM approvals WHERE id = ?").pluck().get(approval.approvalId)).toBe("staff:stf_eng2");
      const actions = s.bulkhead.db.prepare("SELECT action FROM admin_audit WHERE object IN (?, ?) ORDER BY rowid").pluck()
        .all("approval:flag.put:risky_billing", `approval:${approval.approvalId}`);
      expect(actions).toEqual(["approval.request", "approval.approve"]);
    }
    // Spent once, at the same time, on every sidecar.
    for (const s of sidecars) expect(s.bulkhead.db.prepare("SELECT used_at FROM approvals WHERE id = ?").pluck().get(approval.approvalId)).toBe(clock.now());
  });
});

describe("impersonation across sidecars", () => {
  const staffCheck = (s: TestSidecar, minRevision = 0) =>
    s.check({ ...checkRequest("ten_acme", "stf_agent", "projects.read", "ten_acme", { minRevision }), principal: { tenantId: "ten_acme", actorId: "stf_agent", actorType: "staff", requestId: "req_staff" } });

  it("a session started on B holds on every sidecar and ends on all at the expiry the command carries", async () => {
    const started = await admins[B]!<{ sessionId: string; expiresAt: string; storeRevision: number }>("startImpersonation", {
      tenantId: "ten_acme", asActorId: "usr_alice", ttlSeconds: 600, reason: "customer_request: ticket 9",
    }, as("stf_agent"));
    const start = clock.now();
    expect(started.expiresAt).toBe(new Date(start + 600_000).toISOString());
    for (const s of sidecars) {
      expect((await staffCheck(s, started.storeRevision)).allow).toBe(true);
      expect(s.bulkhead.stores.impersonations.get(started.sessionId)).toMatchObject({ expiresAt: start + 600_000, staffId: "stf_agent" });
    }
    try {
      clock.set(start + 599_999);
      for (const s of sidecars) expect((await staffCheck(s)).allow).toBe(true);
      clock.set(start + 600_000);
      for (const s of sidecars) expect(codes(await staffCheck(s))).toEqual(["not_a_member"]);
    } finally {
      clock.set(start);
    }
  });

  it("another staff member cannot end someone's session from another sidecar", async () => {
    const started = await admins[A]!<{ sessionId: string }>("startImpersonation", {
      tenantId: "ten_acme", asActorId: "usr_alice", ttlSeconds: 600, reason: "customer_request: ticket 10",
    }, as("stf_agent"));
    await settle();
    const error = await admins[C]!("endImpersonation", { tenantId: "ten_acme", sessionId: started.sessionId, reason: "customer_request" }, as("stf_eng")).catch((e) => e);
    expect(error.code).toBe(status.PERMISSION_DENIED);
    const ended = await admins[C]!<{ storeRevision: number }>("endImpersonation", { tenantId: "ten_acme", sessionId: started.sessionId, reason: "customer_request" }, as("stf_agent"));
    for (const s of sidecars) expect(codes(await staffCheck(s, ended.storeRevision))).toEqual(["not_a_member"]);
  });
});

describe("the key secret", () => {
  it("a sidecar started with another BULKHEAD_KEY_SECRET refuses to join, naming it", async () => {
    const replication = { natsServers: cluster.urls(), stream: STREAM, stalenessMs: 5_000, replicas: 3 };
    const error = await withKeySecret("some-other-secret", () => startSidecar({ demo: false, config: { replication }, runtime: { clock } })).catch((e) => e);
    expect(error).toBeInstanceOf(Error);
    expect(String(error.message)).toContain("BULKHEAD_KEY_SECRET");
  });

  it("the log holds no raw API key or staff token, only their hashes", async () => {
    // Three staff tokens and three API keys.
    expect(rawSecrets).toHaveLength(6);
    const nc = await connect({ servers: cluster.urls() });
    try {
      const jsm = await jetstreamManager(nc);
      const last = (await jsm.streams.info(STREAM)).state.last_seq;
      const bodies: string[] = [];
      for (let seq = 1; seq <= last; seq++) bodies.push(new TextDecoder().decode((await jsm.streams.getMessage(STREAM, { seq }))!.data));
      const log = bodies.join("\n");
      expect(log).toContain("api_key.create");
      // Neither the whole value nor its secret part (after the key id) is there.
      for (const raw of rawSecrets) {
        const secretPart = raw.startsWith("bk_staff_") ? raw.slice(9) : raw.slice(raw.indexOf(".") + 1);
        expect(log).not.toContain(secretPart);
      }
    } finally {
      await nc.close();
    }
  });
});
