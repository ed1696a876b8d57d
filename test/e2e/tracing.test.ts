import { Metadata, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BatchCheckRequest, ResolveContextRequest, type BatchCheckResponse, type TenantContext } from "../../src/gen/bulkhead/v1/decision.js";
import { TRACING_OFF } from "../../src/telemetry/tracing.js";
import { adminAuth, adminClient } from "../support/admin-client.js";
import { startOtlpCollector, type CollectedSpan } from "../support/otlp-collector.js";
import { checkRequest, startSidecar, TEST_ADMIN_TOKEN, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliver, event, sign, subscriptionObject } from "../support/stripe-events.js";
import { epochSeconds, testClock } from "../support/test-time.js";

// Traces end to end: a real sidecar exporting over OTLP/HTTP to a real HTTP
// collector in this process, called over real gRPC and HTTP with W3C
// traceparent headers. Secrets used in the calls are searched for in every
// byte that reached the collector.
const CALLER_TOKEN = "caller-token-do-not-trace";
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`;
const clock = testClock();

let collector: Awaited<ReturnType<typeof startOtlpCollector>>;
let sidecar: TestSidecar;

beforeAll(async () => {
  collector = await startOtlpCollector();
  sidecar = await startSidecar({
    runtime: { clock },
    config: { callerTokens: [CALLER_TOKEN], tracing: { endpoint: collector.endpoint, serviceName: "bulkhead-test" } },
  });
});
afterAll(async () => {
  await sidecar.close();
  await collector.close();
});
beforeEach(() => {
  collector.spans.length = 0;
  collector.bodies.length = 0;
});

const callerMetadata = (traceparent?: string, token = CALLER_TOKEN) => {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  if (traceparent) md.set("traceparent", traceparent);
  return md;
};

/** The spans exported so far with this name (flushed first, so every finished call is there). */
async function exported(name: string): Promise<CollectedSpan[]> {
  await sidecar.bulkhead.tracing.flush();
  return collector.spans.filter((s) => s.name === name);
}

/** Every byte the collector received: a secret must appear in none of it. */
const everythingExported = () => collector.bodies.join("\n");

function unaryCall<Res>(method: "batchCheck" | "resolveContext", request: unknown, md: Metadata): Promise<Res> {
  return new Promise((resolve, reject) =>
    (sidecar.client[method] as unknown as (r: unknown, m: Metadata, cb: (e: ServiceError | null, r: Res) => void) => void).call(sidecar.client, request, md, (e, r) =>
      e ? reject(e) : resolve(r),
    ),
  );
}

describe("Check", () => {
  it("is a child of the caller's traceparent and carries tenant, plan, action and the answer", async () => {
    const response = await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"), callerMetadata(TRACEPARENT));
    expect(response.allow).toBe(true);
    const [span, ...more] = await exported("bulkhead.v1.DecisionService/Check");
    expect(more).toEqual([]);
    expect(span!.traceId).toBe(TRACE_ID);
    expect(span!.parentSpanId).toBe(PARENT_SPAN_ID);
    expect(span!.serviceName).toBe("bulkhead-test");
    expect(span!.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.method": "bulkhead.v1.DecisionService/Check",
      "bulkhead.tenant_id": "ten_acme",
      "bulkhead.plan": "pro",
      "bulkhead.action": "reports.export",
      "bulkhead.allow": true,
      "bulkhead.decision_id": response.decisionId,
      "bulkhead.reasons": "",
    });
    expect(span!.statusCode).not.toBe(2);
    expect(everythingExported()).not.toContain(CALLER_TOKEN);
  });

  it("starts a new trace when the caller sends no traceparent, and ignores a malformed one", async () => {
    await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"), callerMetadata());
    await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"), callerMetadata(`00-${TRACE_ID}-zz-01`));
    const spans = await exported("bulkhead.v1.DecisionService/Check");
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      expect(span.parentSpanId).toBe("");
      expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.traceId).not.toBe(TRACE_ID);
    }
  });

  it("records a cross-tenant deny with its reason code", async () => {
    const response = await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"), callerMetadata(TRACEPARENT));
    expect(response.allow).toBe(false);
    const [span] = await exported("bulkhead.v1.DecisionService/Check");
    expect(span!.attributes).toMatchObject({ "bulkhead.tenant_id": "ten_acme", "bulkhead.allow": false, "bulkhead.reasons": "wrong_tenant" });
  });

  it("marks a refused caller's call failed, and the wrong token it sent is not exported", async () => {
    const wrongToken = "attacker-token-never-exported";
    const error = await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"), callerMetadata(TRACEPARENT, wrongToken)).catch((e) => e);
    expect(error.code).toBe(16); // UNAUTHENTICATED
    const [span] = await exported("bulkhead.v1.DecisionService/Check");
    expect(span!.statusCode).toBe(2);
    expect(span!.attributes["bulkhead.error_code"]).toBe("UNAUTHENTICATED");
    expect(span!.attributes["bulkhead.allow"]).toBeUndefined();
    expect(everythingExported()).not.toContain(wrongToken);
  });

  it("never exports the API key a Check authenticates with", async () => {
    const { raw } = sidecar.bulkhead.writer.write((tx) =>
      sidecar.bulkhead.apiKeys.create(tx, { tenantId: "ten_globex", name: "ci", scopes: ["projects.read"], ratePerMinute: 600, expiresAt: null, createdBy: "test" }),
    ).result;
    const response = await sidecar.check({ principal: { apiKey: raw }, action: "projects.read", resource: { type: "project", id: "p1", tenantId: "ten_globex" } }, callerMetadata());
    expect(response.allow).toBe(true);
    const [span] = await exported("bulkhead.v1.DecisionService/Check");
    expect(span!.attributes).toMatchObject({ "bulkhead.tenant_id": "ten_globex", "bulkhead.plan": "free", "bulkhead.allow": true });
    expect(everythingExported()).not.toContain(raw);
    expect(everythingExported()).not.toContain(raw.slice(-16));
  });
});

describe("BatchCheck and ResolveContext", () => {
  it("one BatchCheck is one span naming every tenant it decided for", async () => {
    const request = BatchCheckRequest.fromPartial({
      checks: [checkRequest("ten_acme", "usr_alice", "projects.read"), checkRequest("ten_globex", "usr_carol", "projects.read"), checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex")],
    } as never);
    const response = await unaryCall<BatchCheckResponse>("batchCheck", request, callerMetadata(TRACEPARENT));
    const [span, ...more] = await exported("bulkhead.v1.DecisionService/BatchCheck");
    expect(more).toEqual([]);
    expect(span!.parentSpanId).toBe(PARENT_SPAN_ID);
    expect(span!.attributes).toMatchObject({
      "bulkhead.tenant_id": "ten_acme,ten_globex",
      "bulkhead.action": "projects.read",
      "bulkhead.batch.size": 3,
      "bulkhead.batch.allowed": 2,
      "bulkhead.plan": "free,pro",
    });
    expect(response.results.map((r) => r.allow)).toEqual([true, true, false]);
  });

  it("ResolveContext carries the resolved tenant and plan", async () => {
    const request = ResolveContextRequest.fromPartial({ principal: { tenantId: "ten_acme", actorId: "usr_alice" } });
    const context = await unaryCall<TenantContext>("resolveContext", request, callerMetadata(TRACEPARENT));
    expect(context.tenantId).toBe("ten_acme");
    const [span] = await exported("bulkhead.v1.DecisionService/ResolveContext");
    expect(span!.traceId).toBe(TRACE_ID);
    expect(span!.parentSpanId).toBe(PARENT_SPAN_ID);
    expect(span!.attributes).toMatchObject({ "bulkhead.tenant_id": "ten_acme", "bulkhead.plan": "pro" });
  });

  it("a ResolveContext for a non-member is a failed span with the error code", async () => {
    const request = ResolveContextRequest.fromPartial({ principal: { tenantId: "ten_globex", actorId: "usr_alice" } });
    const error = (await unaryCall("resolveContext", request, callerMetadata()).catch((e: unknown) => e)) as ServiceError;
    expect(error.code).toBe(5); // NOT_FOUND
    const [span] = await exported("bulkhead.v1.DecisionService/ResolveContext");
    expect(span!.statusCode).toBe(2);
    expect(span!.attributes["bulkhead.error_code"]).toBe("NOT_FOUND");
  });
});

describe("Stripe webhook", () => {
  const now = () => epochSeconds(clock.now());

  it("is a child of the delivery's traceparent, names the tenant, and exports neither the secret nor the signature", async () => {
    sidecar.seed({ tenants: [{ id: "ten_traced", slug: "traced", planCode: "free" }], billingCustomers: [{ customerId: "cus_traced", tenantId: "ten_traced" }] });
    const payload = event("evt_traced_1", "customer.subscription.created", subscriptionObject({ id: "sub_traced", customer: "cus_traced", status: "active", plan: "pro" }), now());
    const signature = sign(payload, TEST_WEBHOOK_SECRET, now());
    const response = await fetch(`http://127.0.0.1:${sidecar.httpPort}/webhooks/stripe`, {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": signature, traceparent: TRACEPARENT },
      body: payload,
    });
    expect(response.status).toBe(200);
    const [span] = await exported("POST /webhooks/stripe");
    expect(span!.traceId).toBe(TRACE_ID);
    expect(span!.parentSpanId).toBe(PARENT_SPAN_ID);
    expect(span!.attributes).toMatchObject({
      "http.response.status_code": 200,
      "bulkhead.billing.outcome": "applied",
      "bulkhead.tenant_id": "ten_traced",
      "bulkhead.stripe.event_type": "customer.subscription.created",
    });
    expect(everythingExported()).not.toContain(TEST_WEBHOOK_SECRET);
    expect(everythingExported()).not.toContain(signature.split(",v1=")[1]);
  });

  it("a bad signature is a failed span that records nothing the unsigned body claims", async () => {
    const payload = event("evt_forged", "customer.subscription.created", subscriptionObject({ id: "sub_forged", customer: "cus_traced", status: "active", plan: "enterprise" }), now());
    expect((await deliver(sidecar.httpPort, payload, sign(payload, "whsec_attacker", now()))).status).toBe(400);
    const [span] = await exported("POST /webhooks/stripe");
    expect(span!.statusCode).toBe(2);
    expect(span!.attributes).toMatchObject({ "http.response.status_code": 400, "bulkhead.error_code": "bad_signature" });
    expect(span!.attributes["bulkhead.stripe.event_id"]).toBeUndefined();
    expect(everythingExported()).not.toContain("whsec_attacker");
  });
});

describe("AdminService writes", () => {
  it("a write is one span with tenant, actor and reason code; the admin token is not exported", async () => {
    const { client, call } = adminClient(sidecar.grpcAddress);
    const md = adminAuth();
    md.set("traceparent", TRACEPARENT);
    await call("putTenant", { tenantId: "ten_admin_traced", slug: "admin-traced", planCode: "pro", reason: "onboarding: ticket 7" }, md);
    const [span] = await exported("bulkhead.v1.AdminService/PutTenant");
    expect(span!.traceId).toBe(TRACE_ID);
    expect(span!.parentSpanId).toBe(PARENT_SPAN_ID);
    expect(span!.attributes).toMatchObject({ "bulkhead.tenant_id": "ten_admin_traced", "bulkhead.actor": "bootstrap:usr_ops", "bulkhead.admin.reason_code": "onboarding" });
    expect(everythingExported()).not.toContain(TEST_ADMIN_TOKEN);
    expect(everythingExported()).not.toContain("ticket 7");
    client.close();
  });

  it("a refused write is a failed span; reads are not traced", async () => {
    const { client, call } = adminClient(sidecar.grpcAddress);
    const error = await call("putTenant", { tenantId: "ten_x", slug: "x", planCode: "free", reason: "customer_request" }, adminAuth("not-the-admin-token")).catch((e) => e);
    expect(error.code).toBe(16);
    await call("getTenant", { tenantId: "ten_acme" });
    const [span] = await exported("bulkhead.v1.AdminService/PutTenant");
    expect(span!.statusCode).toBe(2);
    expect(span!.attributes["bulkhead.error_code"]).toBe("UNAUTHENTICATED");
    expect(await exported("bulkhead.v1.AdminService/GetTenant")).toEqual([]);
    expect(everythingExported()).not.toContain("not-the-admin-token");
    client.close();
  });
});

describe("an unreachable collector", () => {
  it("changes no answer and does not hold up close", async () => {
    const gone = await startOtlpCollector();
    await gone.close(); // its port now refuses connections
    const stranded = await startSidecar({ config: { tracing: { endpoint: gone.endpoint, serviceName: "bulkhead" } } });
    try {
      expect((await stranded.check(checkRequest("ten_acme", "usr_alice", "reports.export"))).allow).toBe(true);
      expect((await stranded.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"))).allow).toBe(false);
    } finally {
      await stranded.close();
    }
  });
});

describe("tracing off", () => {
  it("a sidecar without an endpoint gets the no-op tracing", async () => {
    const plain = await startSidecar();
    try {
      expect(plain.bulkhead.tracing).toBe(TRACING_OFF);
      expect((await plain.check(checkRequest("ten_acme", "usr_alice", "reports.export"))).allow).toBe(true);
    } finally {
      await plain.close();
    }
  });
});
