import { OFREPProvider } from "@openfeature/ofrep-provider";
import { OpenFeature } from "@openfeature/server-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { MINUTE, testClock } from "../support/test-time.js";

// OFREP's 429 with Retry-After: a token bucket per caller token
// (BULKHEAD_OFREP_RATE_PER_MINUTE), on the sidecar's injected clock, so
// refills happen only when the test moves the clock. Demo dataset:
// new_export_pipeline is on for acme (pro), off for globex (free).
const RATE = 3;
const BUSY = "ofrep-busy-token";
const QUIET = "ofrep-quiet-token";
const clock = testClock();
let sidecar: TestSidecar;
let base: string;
beforeAll(async () => {
  sidecar = await startSidecar({ config: { callerTokens: [BUSY, QUIET], ofrepRatePerMinute: RATE }, runtime: { clock } });
  base = `http://127.0.0.1:${sidecar.httpPort}`;
});
afterAll(async () => {
  await OpenFeature.close();
  await sidecar.close();
});

const evaluate = (token: string, path = "/ofrep/v1/evaluate/flags/new_export_pipeline", tenant = "ten_acme") =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ context: { tenant_id: tenant, targetingKey: "usr_alice" } }),
  });

async function metric(): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^bulkhead_ofrep_rate_limited_total (\d+)/m.exec(text)?.[1] ?? "NaN");
}

describe("OFREP rate limit per caller token", () => {
  it("answers a burst past the limit 429 with Retry-After and an OFREP error body, never a value", async () => {
    const statuses: number[] = [];
    const limited: Response[] = [];
    for (let i = 0; i < RATE + 2; i++) {
      const response = await evaluate(BUSY, i % 2 === 0 ? "/ofrep/v1/evaluate/flags/new_export_pipeline" : "/ofrep/v1/evaluate/flags");
      statuses.push(response.status);
      if (response.status === 429) limited.push(response);
      else await response.body?.cancel();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    // One token comes back every MINUTE / RATE = 20 s.
    for (const response of limited) expect(response.headers.get("retry-after")).toBe("20");
    // The fourth request was a bulk one, the fifth a single flag.
    const bulk = await limited[0]!.json();
    const single = await limited[1]!.json();
    expect(single).toEqual({ key: "new_export_pipeline", errorCode: "GENERAL", errorDetails: expect.stringMatching(/rate limit.*3 OFREP requests a minute; retry after 20 s/) });
    expect(bulk).toEqual({ errorCode: "GENERAL", errorDetails: expect.stringContaining("rate limit") });
    expect(bulk).not.toHaveProperty("flags");
    expect(await metric()).toBe(2);
  });

  it("does not spend another caller token's bucket; an unknown token is 401, not 429", async () => {
    const stranger = await evaluate("not-a-caller-token");
    expect(stranger.status).toBe(401);
    const quiet = await evaluate(QUIET);
    expect(quiet.status).toBe(200);
    expect(await quiet.json()).toMatchObject({ value: true });
    expect((await evaluate(BUSY)).status).toBe(429);
  });

  it("lets the caller back in once the bucket refilled on the sidecar's clock", async () => {
    clock.advance(19_000);
    const early = await evaluate(BUSY);
    expect(early.status).toBe(429);
    expect(early.headers.get("retry-after")).toBe("1");
    clock.advance(MINUTE / RATE);
    expect((await evaluate(BUSY)).status).toBe(200);
  });

  it("through the OpenFeature OFREP provider: the caller's default with an error, never another tenant's answer or a wrong on", async () => {
    clock.advance(MINUTE); // a full bucket: RATE requests
    await OpenFeature.setProviderAndWait("rate", new OFREPProvider({ baseUrl: base, headers: { Authorization: `Bearer ${BUSY}` } }));
    const client = OpenFeature.getClient("rate");
    // globex (free) answered off first, then acme's on, then the bucket is spent.
    expect(await client.getBooleanValue("new_export_pipeline", true, { tenant_id: "ten_globex", targetingKey: "usr_carol" })).toBe(false);
    expect(await client.getBooleanValue("new_export_pipeline", false, { tenant_id: "ten_acme", targetingKey: "usr_alice" })).toBe(true);
    expect(await client.getBooleanValue("new_export_pipeline", false, { tenant_id: "ten_acme", targetingKey: "usr_alice" })).toBe(true);
    for (const [tenant, fallback] of [["ten_acme", false], ["ten_globex", false], ["ten_globex", true]] as const) {
      const details = await client.getBooleanDetails("new_export_pipeline", fallback, { tenant_id: tenant, targetingKey: "usr_carol" });
      // The 429 (then the provider's own pause until Retry-After) is an error with the caller's default.
      expect(details).toMatchObject({ value: fallback, reason: "ERROR", errorCode: "GENERAL" });
    }
  });
});
