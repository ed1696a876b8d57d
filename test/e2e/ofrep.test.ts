import { OFREPProvider } from "@openfeature/ofrep-provider";
import { OpenFeature, type Client, type EvaluationContext } from "@openfeature/server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// OFREP on the HTTP port, driven by the real OpenFeature server SDK and its
// OFREP provider from npm, against the demo dataset: new_export_pipeline is
// pro/enterprise at 100% (acme is pro, globex free).
const TOKEN = "ofrep-caller-token";
let sidecar: TestSidecar;
let base: string;
let client: Client;
beforeAll(async () => {
  sidecar = await startSidecar({ config: { callerTokens: [TOKEN] }, runtime: { clock: testClock() } });
  base = `http://127.0.0.1:${sidecar.httpPort}`;
  await OpenFeature.setProviderAndWait("bulkhead-ofrep-test", new OFREPProvider({ baseUrl: base, headers: { Authorization: `Bearer ${TOKEN}` } }));
  client = OpenFeature.getClient("bulkhead-ofrep-test");
});
afterAll(async () => {
  await OpenFeature.close();
  await sidecar.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

describe("OFREP through the OpenFeature SDK", () => {
  it("turns the pro flag on for a pro tenant, with OpenFeature details and metadata", async () => {
    const details = await client.getBooleanDetails("new_export_pipeline", false, { tenant_id: "ten_acme", targetingKey: "usr_alice" });
    expect(details).toMatchObject({ value: true, reason: "TARGETING_MATCH", flagMetadata: { kind: "release", owner: "team-reports", risk: "medium" } });
    expect(details.errorCode).toBeUndefined();
  });

  it("keeps it off for a free tenant", async () => {
    const details = await client.getBooleanDetails("new_export_pipeline", true, { tenant_id: "ten_globex", targetingKey: "usr_carol" });
    expect(details).toMatchObject({ value: false, reason: "DEFAULT" });
  });

  it("without a tenant in the context is an error and the caller's own default, never another tenant's answer", async () => {
    for (const context of [{ targetingKey: "usr_alice" }, {}] as EvaluationContext[]) {
      const details = await client.getBooleanDetails("new_export_pipeline", false, context);
      expect(details).toMatchObject({ value: false, reason: "ERROR", errorCode: "INVALID_CONTEXT" });
    }
  });

  it("names an unknown flag FLAG_NOT_FOUND", async () => {
    const details = await client.getBooleanDetails("no_such_flag", false, { tenant_id: "ten_acme", targetingKey: "usr_alice" });
    expect(details).toMatchObject({ value: false, reason: "ERROR", errorCode: "FLAG_NOT_FOUND" });
  });
});

describe("OFREP on the wire", () => {
  it("requires the caller token like every other caller", async () => {
    const response = await post("/ofrep/v1/evaluate/flags/new_export_pipeline", { context: { tenant_id: "ten_acme" } }, {});
    expect(response.status).toBe(401);
    expect(await response.json()).not.toHaveProperty("value");
    const bulk = await post("/ofrep/v1/evaluate/flags", { context: { tenant_id: "ten_acme" } }, { authorization: "Bearer wrong" });
    expect(bulk.status).toBe(401);
  });

  it("answers PARSE_ERROR for a body that is not JSON and INVALID_CONTEXT without a tenant, with no value", async () => {
    const parse = await post("/ofrep/v1/evaluate/flags/new_export_pipeline", "{not json");
    expect(parse.status).toBe(400);
    expect(await parse.json()).toEqual({ key: "new_export_pipeline", errorCode: "PARSE_ERROR", errorDetails: "the body is not JSON" });
    const noTenant = await post("/ofrep/v1/evaluate/flags", { context: { targetingKey: "usr_alice" } });
    expect(noTenant.status).toBe(400);
    expect(await noTenant.json()).toEqual({ errorCode: "INVALID_CONTEXT", errorDetails: "context.tenant_id: is required" });
    const badTenant = await post("/ofrep/v1/evaluate/flags", { context: { tenant_id: "ten acme" } });
    expect(await badTenant.json()).toMatchObject({ errorCode: "INVALID_CONTEXT", errorDetails: expect.stringContaining("context.tenant_id") });
  });

  it("evaluates every flag in bulk with an ETag, and answers 304 to If-None-Match while nothing changed", async () => {
    const first = await post("/ofrep/v1/evaluate/flags", { context: { tenant_id: "ten_acme", targetingKey: "usr_alice" } });
    expect(first.status).toBe(200);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    const { flags } = (await first.json()) as { flags: { key: string; value: boolean }[] };
    expect(flags.map((f) => f.key)).toEqual(["ai_assistant", "new_export_pipeline"]);
    const again = await post("/ofrep/v1/evaluate/flags", { context: { tenant_id: "ten_acme", targetingKey: "usr_alice" } }, {
      authorization: `Bearer ${TOKEN}`, "if-none-match": etag,
    });
    expect(again.status).toBe(304);
    // Another tenant's answer differs, so the same ETag does not match it.
    const other = await post("/ofrep/v1/evaluate/flags", { context: { tenant_id: "ten_globex" } }, { authorization: `Bearer ${TOKEN}`, "if-none-match": etag });
    expect(other.status).toBe(200);
    expect(other.headers.get("etag")).not.toBe(etag);
  });
});
