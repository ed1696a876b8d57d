import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckRequest } from "../../src/gen/bulkhead/v1/decision.js";
import { STREAM_PENDING_LIMIT } from "../../src/server/grpc/decision-handlers.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";

// End to end: a real server on a free port, the real gRPC client, the compiled
// Wasm policy and a real SQLite file seeded with the demo dataset.
let sidecar: TestSidecar;
beforeAll(async () => {
  sidecar = await startSidecar();
});
afterAll(() => sidecar.close());

describe("tenant boundary", () => {
  it("allows an owner to export in their own tenant", async () => {
    const response = await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"));
    expect(response.allow).toBe(true);
    expect(response.reasons).toEqual([]);
    expect(response.decisionId).toMatch(/^dec_[0-9A-Z]{26}$/);
    expect(response.policyRevision).toMatch(/^[0-9a-f]{16}$/);
    expect(response.storeRevision).toBeGreaterThan(0);
    expect(response.requestId).toBe("req_reports.export");
  });

  it.each(["projects.read", "projects.delete"])("denies %s on another tenant's resource with wrong_tenant only", async (action) => {
    const response = await sidecar.check(checkRequest("ten_acme", "usr_alice", action, "ten_globex"));
    expect(response.allow).toBe(false);
    expect(codes(response)).toEqual(["wrong_tenant"]);
  });

  it("denies a resource without tenant_id", async () => {
    const response = await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", ""));
    expect(response.allow).toBe(false);
    expect(codes(response)).toEqual(["resource_tenant_missing"]);
  });

  it("answers not_a_member for a non-member and never reveals the tenant's state", async () => {
    // usr_dave belongs to initech only; acme is pro and active, which must not show.
    const response = await sidecar.check(checkRequest("ten_acme", "usr_dave", "projects.read"));
    expect(codes(response)).toEqual(["not_a_member"]);
  });

  it("answers ResolveContext NOT_FOUND identically for a non-member and an unknown tenant", async () => {
    const nonMember = await sidecar.resolveContext({ principal: { tenantId: "ten_acme", actorId: "usr_dave" } }).catch((e) => e);
    const unknown = await sidecar.resolveContext({ principal: { tenantId: "ten_nowhere", actorId: "usr_dave" } }).catch((e) => e);
    expect(nonMember.code).toBe(status.NOT_FOUND);
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toBe(nonMember.details);
    expect(unknown.metadata.get("bulkhead-error-code")).toEqual(nonMember.metadata.get("bulkhead-error-code"));
  });

  it("denies a user id presented as a service account", async () => {
    const response = await sidecar.check({
      ...checkRequest("ten_acme", "usr_alice", "projects.read"),
      principal: { tenantId: "ten_acme", actorId: "usr_alice", actorType: "service_account" },
    });
    expect(codes(response)).toEqual(["not_a_member"]);
  });

  it("gives a user who is admin in one tenant and viewer in another different answers", async () => {
    const asAdmin = await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.create"));
    const asViewer = await sidecar.check(checkRequest("ten_acme", "usr_carol", "projects.create"));
    expect(asAdmin.allow).toBe(true);
    expect(asViewer.allow).toBe(false);
    expect(codes(asViewer)).toEqual(["missing_permission"]);
  });
});

describe("role, plan and billing", () => {
  it("applies a role downgrade to the very next Check", async () => {
    expect((await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.delete"))).allow).toBe(true);
    const revision = sidecar.seed({ memberships: [{ tenantId: "ten_globex", actorId: "usr_carol", role: "viewer" }] });
    const after = await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.delete"));
    expect(after.allow).toBe(false);
    expect(codes(after)).toEqual(["missing_permission"]);
    expect(after.storeRevision).toBeGreaterThanOrEqual(revision);
    sidecar.seed({ memberships: [{ tenantId: "ten_globex", actorId: "usr_carol", role: "admin" }] });
  });

  it("denies a pro feature to a free tenant with not_in_plan", async () => {
    const response = await sidecar.check(checkRequest("ten_globex", "usr_carol", "analytics.view"));
    expect(response.allow).toBe(false);
    expect(response.reasons[0]).toMatchObject({ code: "not_in_plan", details: { entitlement: "analytics.pro", plan: "free" } });
  });

  it("lets an unpaid tenant read and fix billing but not create", async () => {
    sidecar.seed({ memberships: [{ tenantId: "ten_initech", actorId: "usr_erin", role: "owner" }] });
    expect((await sidecar.check(checkRequest("ten_initech", "usr_dave", "projects.read"))).allow).toBe(true);
    expect((await sidecar.check(checkRequest("ten_initech", "usr_erin", "billing.update"))).allow).toBe(true);
    const create = await sidecar.check(checkRequest("ten_initech", "usr_dave", "projects.create"));
    expect(create.allow).toBe(false);
    expect(codes(create)).toEqual(["billing_read_only"]);
  });

  it("denies an action outside the catalog with unknown_action", async () => {
    const response = await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.teleport"));
    expect(response.allow).toBe(false);
    expect(codes(response)).toEqual(["unknown_action"]);
  });
});

describe("bad input", () => {
  it.each([
    ["principal", { action: "projects.read", resource: { type: "project", tenantId: "ten_acme" } }],
    ["principal.tenant_id", { principal: { actorId: "usr_alice" }, action: "projects.read", resource: { type: "project" } }],
    ["principal.tenant_id", { principal: { tenantId: "ten_acme", tenantSlug: "acme", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project" } }],
    ["principal.actor_id", { principal: { tenantId: "ten_acme" }, action: "projects.read", resource: { type: "project" } }],
    ["principal.actor_type", { principal: { tenantId: "ten_acme", actorId: "usr_alice", actorType: "root" }, action: "projects.read", resource: { type: "project" } }],
    ["principal.tenant_id", { principal: { tenantId: "ten acme; drop", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project" } }],
    ["action", { principal: { tenantId: "ten_acme", actorId: "usr_alice" }, resource: { type: "project" } }],
    ["action", { principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "Projects Read", resource: { type: "project" } }],
    ["resource", { principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read" }],
    ["resource.type", { principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read", resource: { tenantId: "ten_acme" } }],
    ["consume", { principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project", tenantId: "ten_acme" }, consume: 5_000_000_000 }],
    ["principal.actor_id", { principal: { tenantId: "ten_acme", actorId: "x".repeat(200) }, action: "projects.read", resource: { type: "project" } }],
  ])("rejects a request with a bad %s as INVALID_ARGUMENT naming the field", async (field, request) => {
    const error = await sidecar.check(request as never).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual([field]);
    expect(error.details).toContain(field);
  });

  it("rejects oversized resource attributes", async () => {
    const request = checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", {
      resource: { type: "project", tenantId: "ten_acme", attributes: { blob: "x".repeat(20_000) } },
    });
    const error = await sidecar.check(request).catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["resource.attributes"]);
  });

  it("does not answer allow when min_revision is ahead of the store", async () => {
    const ahead = sidecar.bulkhead.tracker.revision + 1000;
    const error = await sidecar
      .check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: ahead }), undefined)
      .catch((e) => e);
    expect(error.code).toBe(status.FAILED_PRECONDITION);
    expect(error.metadata.get("bulkhead-error-code")).toEqual(["STORE_REVISION_NOT_REACHED"]);
  });

  it("honours a min_revision the store has reached", async () => {
    const revision = sidecar.seed({ users: [{ id: "usr_min", email: "m@example.com", displayName: "M" }] });
    const response = await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: revision }));
    expect(response.allow).toBe(true);
    expect(response.storeRevision).toBeGreaterThanOrEqual(revision);
  });
});

describe("BatchCheck", () => {
  const requests = [
    checkRequest("ten_acme", "usr_alice", "reports.export"),
    checkRequest("ten_acme", "usr_bob", "reports.export"),
    checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"),
    checkRequest("ten_globex", "usr_carol", "analytics.view"),
    checkRequest("ten_initech", "usr_dave", "projects.create"),
    checkRequest("ten_acme", "usr_dave", "projects.read"),
    checkRequest("ten_acme", "usr_alice", "projects.teleport"),
  ];

  it("answers in request order exactly as single Checks do", async () => {
    const batch = await sidecar.batchCheck({ checks: requests });
    const singles = await Promise.all(requests.map((r) => sidecar.check(r)));
    expect(batch.results).toHaveLength(requests.length);
    expect(batch.results.map((r) => [r.allow, codes(r)])).toEqual(singles.map((r) => [r.allow, codes(r)]));
    expect(new Set(batch.results.map((r) => r.decisionId)).size).toBe(requests.length);
  });

  it("answers a malformed item with its own error and decides the rest (ADR 56; more in batch-items.test.ts)", async () => {
    const { results } = await sidecar.batchCheck({ checks: [requests[0]!, { ...requests[1]!, action: "" }] });
    expect(results.map((r) => r.allow)).toEqual([true, false]);
    expect(results[1]!.error).toMatchObject({ code: "REQUEST_INVALID_ARGUMENT", field: "action" });
  });
});

describe("CheckStream", () => {
  it("answers every request on one stream, matched by request_id", async () => {
    const stream = sidecar.client.checkStream();
    const answers: Record<string, boolean> = {};
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (r: { requestId: string; allow: boolean }) => (answers[r.requestId] = r.allow));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    for (let i = 0; i < 50; i++) {
      const own = i % 2 === 0;
      stream.write(
        CheckRequest.fromPartial({
          ...checkRequest("ten_acme", "usr_alice", "projects.read", own ? "ten_acme" : "ten_globex"),
          principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId: `r${i}` },
        }),
      );
    }
    stream.end();
    await done;
    expect(Object.keys(answers)).toHaveLength(50);
    for (let i = 0; i < 50; i++) expect(answers[`r${i}`]).toBe(i % 2 === 0);
  });

  it("ends the stream with INVALID_ARGUMENT on a malformed request", async () => {
    const stream = sidecar.client.checkStream();
    const outcome = new Promise<{ code: number }>((resolve) => {
      stream.on("data", () => {});
      stream.on("error", resolve);
      stream.on("end", () => resolve({ code: status.OK }));
    });
    stream.write(CheckRequest.fromPartial({ action: "projects.read" }));
    expect((await outcome).code).toBe(status.INVALID_ARGUMENT);
  });

  /** Opens a stream, writes `requests`, and resolves with what came back and how it ended. */
  function streamOf(requests: CheckRequest[]) {
    const stream = sidecar.client.checkStream();
    const answers: { requestId: string; allow: boolean }[] = [];
    const outcome = new Promise<{ code: number; metadata?: Metadata }>((resolve) => {
      stream.on("data", (r: { requestId: string; allow: boolean }) => answers.push(r));
      stream.on("error", resolve);
      stream.on("end", () => resolve({ code: status.OK }));
    });
    for (const request of requests) stream.write(request);
    return { stream, answers, outcome };
  }
  const streamed = (requestId: string, resourceTenant = "ten_acme", extra = {}) =>
    CheckRequest.fromPartial({
      ...checkRequest("ten_acme", "usr_alice", "projects.read", resourceTenant, extra),
      principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId },
    });

  it.each([
    ["an empty request_id", ["r1", ""]],
    ["a request_id already unanswered on the stream", ["r1", "r1"]],
  ])("ends the stream with INVALID_ARGUMENT on %s, so answers cannot be paired by position (review item 5)", async (_, ids) => {
    const ahead = sidecar.bulkhead.tracker.revision + 1_000_000;
    // The first request waits on min_revision, so it is still unanswered when the second arrives.
    const { stream, outcome } = streamOf([streamed(ids[0]!, "ten_acme", { minRevision: ahead }), streamed(ids[1]!, "ten_globex")]);
    const ended = await outcome;
    expect(ended.code).toBe(status.INVALID_ARGUMENT);
    expect(ended.metadata?.get("bulkhead-field")).toEqual(["principal.request_id"]);
    stream.cancel();
  });

  it("pairs a deny waiting on min_revision by request_id, not by position", async () => {
    const reached = sidecar.bulkhead.tracker.revision;
    const { stream, answers, outcome } = streamOf([streamed("deny", "ten_globex", { minRevision: reached + 1 }), streamed("allow")]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    sidecar.seed({ tenants: [{ id: "ten_stream_bump", slug: "stream-bump", planCode: "free" }] });
    stream.end();
    expect((await outcome).code).toBe(status.OK);
    expect(answers.map((a) => a.requestId)).toEqual(["allow", "deny"]);
    expect(answers.find((a) => a.requestId === "deny")?.allow).toBe(false);
  });

  it("bounds a stream's min_revision waits and cancels them when the client leaves (review item 6)", async () => {
    const waiter = sidecar.bulkhead.decider.revisions;
    const ahead = sidecar.bulkhead.tracker.revision + 1_000_000;
    const { stream, outcome } = streamOf(Array.from({ length: 5_000 }, (_, i) => streamed(`w${i}`, "ten_acme", { minRevision: ahead })));
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    await until(() => waiter.waiting >= STREAM_PENDING_LIMIT);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(waiter.waiting).toBeGreaterThan(0);
    expect(waiter.waiting).toBeLessThanOrEqual(STREAM_PENDING_LIMIT);
    // An unrelated Check is answered while the stream's requests wait.
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);
    stream.cancel();
    await outcome;
    // Well inside the 2 s wait budget: the waits ended because the stream did, not because they timed out.
    await until(() => waiter.waiting === 0);
    expect(waiter.waiting).toBe(0);
  });
});

describe("audit", () => {
  it("records every decision with its id, reasons and revisions", async () => {
    const response = await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.delete"));
    sidecar.bulkhead.decisionLog.flush();
    const row = sidecar.bulkhead.db
      .prepare("SELECT * FROM decision_log WHERE decision_id = ?")
      .get(response.decisionId) as Record<string, unknown>;
    expect(row).toMatchObject({
      tenant_id: "ten_acme",
      actor_id: "usr_bob",
      action: "projects.delete",
      allow: 0,
      reasons: '["missing_permission"]',
      policy_revision: response.policyRevision,
      store_revision: response.storeRevision,
      request_id: "req_projects.delete",
    });
  });
});

describe("caller credentials", () => {
  it("rejects calls without a configured caller token", async () => {
    const guarded = await startSidecar({ config: { callerTokens: ["s3cret-token"] } });
    try {
      const request = checkRequest("ten_acme", "usr_alice", "projects.read");
      const missing = await guarded.check(request).catch((e) => e);
      expect(missing.code).toBe(status.UNAUTHENTICATED);
      const wrong = new Metadata();
      wrong.set("authorization", "Bearer not-it");
      expect((await guarded.check(request, wrong).catch((e) => e)).code).toBe(status.UNAUTHENTICATED);
      const right = new Metadata();
      right.set("authorization", "Bearer s3cret-token");
      expect((await guarded.check(request, right)).allow).toBe(true);
    } finally {
      await guarded.close();
    }
  });
});
