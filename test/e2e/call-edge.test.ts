import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CheckRequest } from "../../src/gen/bulkhead/v1/decision.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";

// The one call interceptor (ADR 92) on a real in-process sidecar over real
// gRPC: the call log's fields are handed down explicitly, not through an
// AsyncLocalStorage, so each line must carry its own call's plan, whoever
// else is being answered at the same time; a unary call's cancel signal is
// read off the grpc-js call, so a caller who leaves still ends its wait.
const CALLER_TOKEN = "caller-token-call-edge-7c1d";
const lines: string[] = [];
let sidecar: TestSidecar;

beforeAll(async () => {
  sidecar = await startSidecar({ config: { callerTokens: [CALLER_TOKEN] }, runtime: { log: (message) => lines.push(message) } });
});
afterAll(() => sidecar?.close());
beforeEach(() => {
  lines.length = 0;
});

const bearer = (token = CALLER_TOKEN) => {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
};

/** The fields of the call lines written so far (loggerOverMessages: `<msg> <level> <json>`). */
function callLines(): Record<string, unknown>[] {
  return lines
    .filter((line) => line.startsWith("call answered") || line.startsWith("call failed"))
    .map((line) => JSON.parse(line.slice(line.indexOf("{"))) as Record<string, unknown>);
}

const lineOf = (requestId: string) => callLines().find((l) => l.requestId === requestId);

const until = async (done: () => boolean) => {
  for (let i = 0; i < 400 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
};

describe("call log fields, passed explicitly", () => {
  it("gives each of many concurrent Checks the plan of its own tenant, never a neighbour's", async () => {
    const asks = Array.from({ length: 40 }, (_, i) => {
      const acme = i % 2 === 0;
      const request = checkRequest(acme ? "ten_acme" : "ten_globex", acme ? "usr_alice" : "usr_carol", "reports.export");
      return sidecar.check({ ...request, principal: { ...request.principal, requestId: `req_edge_${i}` } }, bearer());
    });
    await Promise.all(asks);
    await until(() => callLines().length >= 40);
    for (let i = 0; i < 40; i++) {
      expect(lineOf(`req_edge_${i}`), `req_edge_${i}`).toMatchObject({ tenantId: i % 2 === 0 ? "ten_acme" : "ten_globex", plan: i % 2 === 0 ? "pro" : "free" });
    }
  });

  it("carries no plan for a principal that resolved to no membership, nor for a refused caller", async () => {
    // usr_alice is not a member of globex: the call is answered (a deny), but no tenant context was resolved.
    const outsider = checkRequest("ten_globex", "usr_alice", "reports.export");
    await sidecar.check({ ...outsider, principal: { ...outsider.principal, requestId: "req_edge_outsider" } }, bearer());
    const refused = checkRequest("ten_acme", "usr_alice", "reports.export");
    const error = (await sidecar.check({ ...refused, principal: { ...refused.principal, requestId: "req_edge_refused" } }, bearer("not-the-token")).catch((e: unknown) => e)) as ServiceError;
    expect(error.code).toBe(status.UNAUTHENTICATED);
    await until(() => lineOf("req_edge_outsider") !== undefined && lineOf("req_edge_refused") !== undefined);
    expect(lineOf("req_edge_outsider")).toMatchObject({ code: "OK", result: "deny" });
    expect(lineOf("req_edge_outsider")).not.toHaveProperty("plan");
    expect(lineOf("req_edge_refused")).toMatchObject({ code: "UNAUTHENTICATED" });
    expect(lineOf("req_edge_refused")).not.toHaveProperty("plan");
  });

  it("gives a BatchCheck and a CheckStream the plan their checks resolved to", async () => {
    const item = (i: number) => {
      const request = checkRequest("ten_globex", "usr_carol", "reports.export");
      return { ...request, principal: { ...request.principal, requestId: `req_edge_batch_${i}` } };
    };
    await new Promise<void>((resolve, reject) =>
      sidecar.client.batchCheck({ checks: [item(0), item(1)].map((c) => CheckRequest.fromPartial(c)) }, bearer(), (error) => (error ? reject(error) : resolve())),
    );
    const stream = sidecar.client.checkStream(bearer());
    const ended = new Promise<void>((resolve, reject) => {
      stream.on("data", () => {});
      stream.on("error", reject);
      stream.on("end", resolve);
    });
    const first = checkRequest("ten_acme", "usr_alice", "reports.export");
    stream.write(CheckRequest.fromPartial({ ...first, principal: { ...first.principal, requestId: "req_edge_stream" } }));
    stream.end();
    await ended;
    await until(() => callLines().some((l) => l.method === "/bulkhead.v1.DecisionService/BatchCheck") && lineOf("req_edge_stream") !== undefined);
    expect(callLines().find((l) => l.method === "/bulkhead.v1.DecisionService/BatchCheck")).toMatchObject({ code: "OK", checks: 2, plan: "free" });
    expect(lineOf("req_edge_stream")).toMatchObject({ method: "/bulkhead.v1.DecisionService/CheckStream", code: "OK", tenantId: "ten_acme", plan: "pro" });
  });
});

describe("a unary call's cancel signal", () => {
  it("ends a Check's min_revision wait when the client cancels, long before the wait's budget", async () => {
    const waiter = sidecar.bulkhead.decider.revisions;
    const ahead = sidecar.bulkhead.tracker.revision + 1_000_000;
    const started = performance.now();
    const call = sidecar.client.check(CheckRequest.fromPartial({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), minRevision: ahead }), bearer(), () => {});
    await until(() => waiter.waiting === 1);
    expect(waiter.waiting).toBe(1);
    call.cancel();
    await until(() => waiter.waiting === 0);
    expect(waiter.waiting).toBe(0);
    // The default wait budget is 2 s: the wait ended because the caller left.
    expect(performance.now() - started).toBeLessThan(1_500);
  });
});
