import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient } from "../support/admin-client.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Input a caller controls is answered INVALID_ARGUMENT naming what is wrong,
// never INTERNAL (issue 15, item 10): the caller must be able to tell its own
// mistake from the sidecar failing.
let sidecar: TestSidecar;
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e: ServiceError) => e);

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock: testClock() } });
});
afterAll(() => sidecar.close());

describe("malformed requests", () => {
  it("a uint64 above 2^53 is INVALID_ARGUMENT, not INTERNAL", async () => {
    const error = await failure(sidecar.check({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), minRevision: 2 ** 60 }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/cannot be decoded/);
  });

  const nestedAttributes = (levels: number) => {
    let nested: Record<string, unknown> = { leaf: true };
    for (let i = 1; i < levels; i++) nested = { n: nested };
    return nested;
  };
  const withAttributes = (attributes: Record<string, unknown>) =>
    sidecar.check({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), resource: { type: "project", id: "p", tenantId: "ten_acme", attributes } });

  it("resource attributes nested 100 levels deep are INVALID_ARGUMENT (the decoder refuses them)", async () => {
    const error = await failure(withAttributes(nestedAttributes(100)));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/cannot be decoded/);
  });

  it("resource attributes deeper than 16 levels are INVALID_ARGUMENT naming the field; 16 are fine", async () => {
    const error = await failure(withAttributes(nestedAttributes(20)));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["resource.attributes"]);
    expect((await withAttributes(nestedAttributes(16))).allow).toBe(true);
  });

  it("a sane request still answers", async () => {
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);
  });
});

describe("store failures", () => {
  // A real SQLite failure, injected with a trigger: each write path reports
  // STORE_FAILED (the code a host can alert on), not a bare INTERNAL.
  const codeOf = (e: ServiceError) => e.metadata.get("bulkhead-error-code")[0];

  it("Consume and PutMembership report STORE_FAILED when SQLite fails the write", async () => {
    const db = sidecar.bulkhead.db;
    db.exec(`CREATE TRIGGER injected_usage_failure BEFORE UPDATE ON usage_counters BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
             CREATE TRIGGER injected_usage_insert BEFORE INSERT ON usage_counters BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
             CREATE TRIGGER injected_membership_failure BEFORE INSERT ON memberships BEGIN SELECT RAISE(ABORT, 'injected failure'); END;`);
    const admin = adminClient(sidecar.grpcAddress);
    try {
      const consumed = await failure(sidecar.entitlements.consume({ tenantId: "ten_acme", meter: "exports.csv.monthly", amount: 1, idempotencyKey: "store-fail-1" }));
      expect(codeOf(consumed)).toBe("STORE_FAILED");
      const membership = await failure(admin.call("putMembership", { tenantId: "ten_acme", membership: { actorId: "usr_new", role: "member" }, reason: "onboarding" }));
      expect(codeOf(membership)).toBe("STORE_FAILED");
    } finally {
      admin.client.close();
      db.exec("DROP TRIGGER injected_usage_failure; DROP TRIGGER injected_usage_insert; DROP TRIGGER injected_membership_failure;");
    }
  });
});
