import { InterceptingCall, status, type Interceptor } from "@grpc/grpc-js";
import { createServer, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BulkheadClient, CheckCoalescer, GrpcTransport, SERVER_BATCH_MAX } from "../../src/client/index.js";
import { LIMITS } from "../../src/decision/check-input.js";
import { CheckRequest } from "../../src/gen/bulkhead/v1/decision.js";
import { TEST_ADMIN_TOKEN, checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";

// bulkhead/client against a real sidecar: the real gRPC server, the compiled
// Wasm policy and a SQLite file seeded with the demo dataset.
let sidecar: TestSidecar;
let client: BulkheadClient;
/** Every RPC the client sent, with its request message, seen by a grpc-js interceptor. */
let sent: { method: string; message: any }[] = [];
const recorder: Interceptor = (options, next) =>
  new InterceptingCall(next(options), {
    sendMessage(message, forward) {
      sent.push({ method: options.method_definition.path.split("/").pop()!, message });
      forward(message);
    },
  });
const rpcs = (method: string) => sent.filter((s) => s.method === method);

beforeAll(async () => {
  sidecar = await startSidecar();
  client = new BulkheadClient({ address: sidecar.grpcAddress, adminToken: TEST_ADMIN_TOKEN, operator: "usr_ops", interceptors: [recorder] });
});
afterAll(async () => {
  await client.close();
  await sidecar.close();
});
beforeEach(() => {
  sent = [];
});

/** The parts of an answer that must not depend on how it travelled. */
const verdict = (r: { allow: boolean; reasons: { code: string; details: Record<string, string> }[] }) => ({
  allow: r.allow,
  reasons: r.reasons.map((x) => ({ code: x.code, details: x.details })),
});

/** 100 requests over two tenants, five actors and allowed/denied actions, including cross-tenant ones. */
function mixedRequests(count: number) {
  const actors = [["ten_acme", "usr_alice"], ["ten_acme", "usr_bob"], ["ten_globex", "usr_carol"], ["ten_acme", "usr_carol"], ["ten_acme", "usr_dave"]] as const;
  const actions = ["projects.read", "projects.create", "projects.delete", "billing.read"];
  return Array.from({ length: count }, (_, i) => {
    const [tenant, actor] = actors[i % actors.length]!;
    const resourceTenant = i % 7 === 0 ? "ten_globex" : tenant;
    return checkRequest(tenant, actor, actions[i % actions.length]!, resourceTenant, { principal: { tenantId: tenant, actorId: actor, requestId: `req_${i}` } });
  });
}

describe("coalescing", () => {
  it("sends 100 concurrent checks as one BatchCheck with the answers unary calls give", async () => {
    const requests = mixedRequests(100);
    const answers = await Promise.all(requests.map((r) => client.check(r)));
    expect(rpcs("BatchCheck")).toHaveLength(1);
    expect(rpcs("Check")).toHaveLength(0);
    const unary = await Promise.all(requests.map((r) => sidecar.check(r)));
    expect(answers.map(verdict)).toEqual(unary.map(verdict));
    expect(answers.map((a) => a.requestId)).toEqual(requests.map((r) => r.principal!.requestId));
    // The mix really has both answers, cross-tenant denies among them.
    expect(answers.some((a) => a.allow)).toBe(true);
    expect(answers.some((a) => codes(a).includes("wrong_tenant"))).toBe(true);
  });

  it("splits a tick's checks at the batch maximum", async () => {
    const transport = new GrpcTransport({ address: sidecar.grpcAddress, interceptors: [recorder] });
    const coalescer = new CheckCoalescer(transport, 40);
    const requests = mixedRequests(100).map((r) => CheckRequest.fromPartial(r));
    const deadline = Date.now() + 5_000;
    const answers = await Promise.all(requests.map((r) => coalescer.check(r, { deadline })));
    expect(rpcs("BatchCheck").map((s) => s.message.checks.length)).toEqual([40, 40, 20]);
    expect(answers).toHaveLength(100);
    transport.close();
  });

  it("uses the server's batch maximum", () => {
    expect(SERVER_BATCH_MAX).toBe(LIMITS.batchSize);
  });

  it("gives a malformed check in a batch its own error and the others their own answers", async () => {
    const good = checkRequest("ten_acme", "usr_alice", "projects.read");
    const bad = { principal: { tenantId: "ten_acme", actorId: "usr_alice" }, resource: { type: "project", tenantId: "ten_acme" } };
    const [a, b, c] = await Promise.allSettled([client.check(good), client.check(bad, { throwOnError: true }), client.check(good)]);
    expect(a.status === "fulfilled" && a.value.allow).toBe(true);
    expect(c.status === "fulfilled" && c.value.allow).toBe(true);
    expect(b.status).toBe("rejected");
    const error = (b as PromiseRejectedResult).reason;
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    // Named as a single Check names it, not as checks[1].action.
    expect(error.metadata.get("bulkhead-field")).toEqual(["action"]);
    expect(error.metadata.get("bulkhead-error-code")).toEqual(["REQUEST_INVALID_ARGUMENT"]);
    // Answered inside the one BatchCheck (ADR 56): no item is retried alone.
    expect(rpcs("BatchCheck")).toHaveLength(1);
    expect(rpcs("Check")).toHaveLength(0);
  });

  it("sends a consuming check alone, never inside an all-or-nothing batch", async () => {
    const consuming = checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { consume: 1, idempotencyKey: "client-consume-1" });
    await Promise.all([client.check(consuming), client.check(checkRequest("ten_acme", "usr_alice", "projects.read")), client.check(checkRequest("ten_acme", "usr_bob", "projects.read"))]);
    expect(rpcs("Check").map((s) => s.message.idempotencyKey)).toEqual(["client-consume-1"]);
    expect(rpcs("BatchCheck")).toHaveLength(1);
    // It was a write: its revision is the client's read-your-writes token now.
    expect(client.minRevision).toBeGreaterThan(0);
  });
});

describe("read-your-writes", () => {
  it("sees a role downgrade written through the client on the very next check", async () => {
    const request = checkRequest("ten_globex", "usr_carol", "projects.delete");
    expect(await client.isAllowed(request)).toBe(true);
    const write = await client.putMembership({
      tenantId: "ten_globex", membership: { actorId: "usr_carol", role: "viewer" }, reason: "customer_request: downgrade",
    });
    expect(write.storeRevision).toBeGreaterThan(0);
    expect(client.minRevision).toBe(write.storeRevision);
    sent = [];
    const after = await client.check(request);
    expect(after.allow).toBe(false);
    expect(codes(after)).toEqual(["missing_permission"]);
    // The token travelled: a sidecar whose replica lagged would wait for it rather than answer stale.
    expect(sent[0]!.message.minRevision).toBe(write.storeRevision);
    await client.putMembership({ tenantId: "ten_globex", membership: { actorId: "usr_carol", role: "admin" }, reason: "customer_request: restore" });
  });

  it("carries a consume's revision into later checks and context resolutions", async () => {
    const answer = await client.consume({ tenantId: "ten_acme", meter: "exports.csv.monthly", amount: 1, idempotencyKey: "client-ryw-1" });
    expect(answer.storeRevision).toBeGreaterThan(0);
    sent = [];
    await client.check(checkRequest("ten_acme", "usr_alice", "projects.read"));
    const context = await client.resolveContext({ principal: { tenantId: "ten_acme", actorId: "usr_alice" } });
    expect(context.membershipRole).toBe("owner");
    expect(sent.map((s) => s.message.minRevision)).toEqual([answer.storeRevision, answer.storeRevision]);
  });

  it("never lowers the token when an older write answers late", async () => {
    const first = await client.consume({ tenantId: "ten_acme", meter: "exports.csv.monthly", amount: 1, idempotencyKey: "client-ryw-2" });
    // A retry with the same key returns the original (older) answer.
    await client.consume({ tenantId: "ten_acme", meter: "exports.csv.monthly", amount: 1, idempotencyKey: "client-ryw-3" });
    const high = client.minRevision;
    await client.consume({ tenantId: "ten_acme", meter: "exports.csv.monthly", amount: 1, idempotencyKey: "client-ryw-2" });
    expect(client.minRevision).toBe(high);
    expect(high).toBeGreaterThan(first.storeRevision);
  });
});

describe("fail closed", () => {
  it("denies every check with unavailable when nothing listens on the port", async () => {
    const port = await closedPort();
    const down = new BulkheadClient({ address: `127.0.0.1:${port}` });
    const started = performance.now();
    const answers = await Promise.all(mixedRequests(20).map((r) => down.check(r)));
    const elapsed = performance.now() - started;
    for (const answer of answers) {
      expect(answer.allow).toBe(false);
      expect(codes(answer)).toEqual(["unavailable"]);
      expect(answer.reasons[0]!.message).toMatch(/\S/);
    }
    expect(await down.isAllowed(checkRequest("ten_acme", "usr_alice", "projects.read"))).toBe(false);
    expect(elapsed).toBeLessThan(2_000);
    await down.close();
  });

  it("denies within the deadline when the peer accepts but never answers", async () => {
    const { server, port, sockets } = await silentServer();
    const hung = new BulkheadClient({ address: `127.0.0.1:${port}`, deadlineMs: 300 });
    const started = performance.now();
    const answer = await hung.check(checkRequest("ten_acme", "usr_alice", "projects.read"));
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(answer.allow).toBe(false);
    expect(codes(answer)).toEqual(["unavailable"]);
    expect(await hung.isAllowed(checkRequest("ten_acme", "usr_alice", "projects.read"))).toBe(false);
    await hung.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it("throws the cause instead when asked to", async () => {
    const down = new BulkheadClient({ address: `127.0.0.1:${await closedPort()}` });
    const error = await down.check(checkRequest("ten_acme", "usr_alice", "projects.read"), { throwOnError: true }).catch((e) => e);
    expect(error.code).toBe(status.UNAVAILABLE);
    await down.close();
  });

  it("denies after close", async () => {
    const closing = new BulkheadClient({ address: sidecar.grpcAddress });
    expect(await closing.isAllowed(checkRequest("ten_acme", "usr_alice", "projects.read"))).toBe(true);
    await closing.close();
    expect(await closing.isAllowed(checkRequest("ten_acme", "usr_alice", "projects.read"))).toBe(false);
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP server that accepts connections and never says a word (a hung sidecar). */
async function silentServer(): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as { port: number }).port, sockets };
}
