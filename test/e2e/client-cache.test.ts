import { InterceptingCall, type Interceptor } from "@grpc/grpc-js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BulkheadClient } from "../../src/client/index.js";
import { TEST_SYNC_TOKEN, checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// The client's decision cache against a real sidecar and its real
// WatchChanges stream. A cache hit is proven by the absence of an RPC.
let sidecar: TestSidecar;
let cached: BulkheadClient;
let elsewhere: BulkheadClient;
let rpcs: string[] = [];
const recorder: Interceptor = (options, next) =>
  new InterceptingCall(next(options), {
    sendMessage(message, forward) {
      rpcs.push(options.method_definition.path.split("/").pop()!);
      forward(message);
    },
  });
const decisionRpcs = () => rpcs.filter((m) => m === "Check" || m === "BatchCheck").length;

/** Waits (on real time, bounded) for a condition the stream makes true; asserts nothing about speed. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never: ${what}`);
}

/** A caching client whose cache is live and warm for `request`. */
async function warm(client: BulkheadClient, request: ReturnType<typeof checkRequest>): Promise<void> {
  await client.check(request); // starts the subscription
  await until(() => client.cacheStatus!.live, "the subscription opened");
  await client.check(request); // stored
  rpcs = [];
  await client.check(request);
  expect(decisionRpcs()).toBe(0);
}

const delete_ = checkRequest("ten_globex", "usr_carol", "projects.delete");
const setCarol = (client: BulkheadClient, role: string) =>
  client.putMembership({ tenantId: "ten_globex", membership: { actorId: "usr_carol", role }, reason: `customer_request: ${role}` });

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock: testClock() } });
  // Long enough that only the change stream, never the age limit, can explain an answer changing.
  cached = new BulkheadClient({ address: sidecar.grpcAddress, adminToken: TEST_SYNC_TOKEN, operator: "usr_ops", interceptors: [recorder], cache: { maxAgeMs: 60_000 } });
  elsewhere = new BulkheadClient({ address: sidecar.grpcAddress, adminToken: TEST_SYNC_TOKEN, operator: "usr_ops" });
});
afterAll(async () => {
  await cached.close();
  await elsewhere.close();
  await sidecar?.close();
});
beforeEach(async () => {
  await setCarol(elsewhere, "admin");
  cached.observeRevision(elsewhere.minRevision);
  rpcs = [];
});

describe("decision cache", () => {
  it("is off by default", () => {
    expect(elsewhere.cacheStatus).toBeUndefined();
  });

  it("answers a repeated check without an RPC, with the caller's own request id", async () => {
    const request = checkRequest("ten_acme", "usr_alice", "projects.read");
    await warm(cached, request);
    const again = await cached.check({ ...request, principal: { ...request.principal, requestId: "req_mine" } });
    expect(again.allow).toBe(true);
    expect(again.requestId).toBe("req_mine");
    expect(decisionRpcs()).toBe(0);
  });

  it("keys on every input: another actor, tenant or resource tenant is asked afresh", async () => {
    const request = checkRequest("ten_acme", "usr_alice", "projects.delete");
    await warm(cached, request);
    const crossTenant = await cached.check(checkRequest("ten_acme", "usr_alice", "projects.delete", "ten_globex"));
    const otherActor = await cached.check(checkRequest("ten_acme", "usr_bob", "projects.delete"));
    const otherTenant = await cached.check(checkRequest("ten_globex", "usr_alice", "projects.delete"));
    expect([codes(crossTenant), codes(otherActor), codes(otherTenant)]).toEqual([["wrong_tenant"], ["missing_permission"], ["not_a_member"]]);
    expect(decisionRpcs()).toBeGreaterThan(0);
  });

  it("sees a role downgrade written through the caching client on the very next check", async () => {
    await warm(cached, delete_);
    await setCarol(cached, "viewer");
    const after = await cached.check(delete_);
    expect(after.allow).toBe(false);
    expect(codes(after)).toEqual(["missing_permission"]);
  });

  it("sees a downgrade written by another service on the next check once the host passes its revision on", async () => {
    await warm(cached, delete_);
    const write = await setCarol(elsewhere, "viewer");
    cached.observeRevision(write.storeRevision);
    expect(codes(await cached.check(delete_))).toEqual(["missing_permission"]);
  });

  it("drops an answer when WatchChanges reports a change to its tenant, though nobody told the client", async () => {
    await warm(cached, delete_);
    await setCarol(elsewhere, "viewer");
    await until(async () => !(await cached.isAllowed(delete_)), "the stream invalidated the cached allow");
    expect(codes(await cached.check(delete_))).toEqual(["missing_permission"]);
  });

  it("never caches a consuming check", async () => {
    await until(() => cached.cacheStatus!.live, "live");
    const consuming = checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { consume: 1, idempotencyKey: "cache-consume-1" });
    await cached.check(consuming);
    rpcs = [];
    await cached.check({ ...consuming, idempotencyKey: "cache-consume-2" });
    expect(decisionRpcs()).toBe(1);
  });
});

describe("without a live WatchChanges subscription", () => {
  it("serves nothing when the subscription is refused (a credential without changes.watch)", async () => {
    const refused = new BulkheadClient({ address: sidecar.grpcAddress, adminToken: "not-a-token", interceptors: [recorder], cache: { maxAgeMs: 60_000 } });
    const request = checkRequest("ten_acme", "usr_alice", "projects.read");
    rpcs = [];
    for (let i = 0; i < 5; i++) expect(await refused.isAllowed(request)).toBe(true);
    expect(decisionRpcs()).toBe(5);
    expect(refused.cacheStatus).toEqual({ live: false, size: 0 });
    await refused.close();
  });

  it("stops serving when the stream ends: a stopped sidecar is unavailable, not a cached allow", async () => {
    const own = await startSidecar({ runtime: { clock: testClock() } });
    const client = new BulkheadClient({ address: own.grpcAddress, adminToken: TEST_SYNC_TOKEN, operator: "usr_ops", interceptors: [recorder], cache: { maxAgeMs: 60_000 }, deadlineMs: 500 });
    const request = checkRequest("ten_acme", "usr_alice", "projects.read");
    await warm(client, request);
    await own.close();
    await until(() => !client.cacheStatus!.live, "the client noticed the stream ended");
    const answer = await client.check(request);
    expect(answer.allow).toBe(false);
    expect(codes(answer)).toEqual(["unavailable"]);
    await client.close();
  });

  it("refuses a transport that cannot watch changes", async () => {
    const { createEmbeddedTransport } = await import("../../src/embedded/index.js");
    const transport = await createEmbeddedTransport({ dbPath: sidecar.bulkhead.config.dbPath, log: () => {} });
    expect(() => new BulkheadClient({ transport, cache: {} })).toThrow(/watchChanges/);
    transport.close();
  });
});
