import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CheckRequest, DecisionServiceClient, type CheckResponse, type DeepPartial } from "../../src/gen/bulkhead/v1/decision.js";
import { LOG_LEVELS } from "../../src/log/log-levels.js";
import { adminAuth, adminClient } from "../support/admin-client.js";
import { CLI, startSidecarProcess, type ProcessOutput } from "../support/processes.js";
import { deliver, event, sign, subscriptionObject } from "../support/stripe-events.js";

// The JSON log of a real `bulkhead serve` process (issue 17, Logs): every
// line on stdout is JSON, a Check is one line with its ids, credentials never
// reach a line, failures are logged with their cause, and the level set by
// BULKHEAD_LOG_LEVEL is the level written. The sidecar checks Stripe
// signatures against its own wall clock, so the webhooks here are signed
// with the wall clock too (test-time.ts: a child process cannot be given one).

// Long and distinct, so a search of the output for them cannot match by chance.
const CALLER_TOKEN = "caller-token-log-test-5d1f0c7a9e";
const WEBHOOK_SECRET = "whsec_logtest5d1f0c7a9e2b";
const ADMIN_TOKEN = "admin-token-log-test-8b3e6a2c41";
const STRIPE_KEY = "sk_test_logtest5d1f0c7a9e2b";
const DEPLOYMENT = "3f9c2ab";
const nowSeconds = () => Math.floor(Date.now() / 1000);

interface LogLine {
  level: string;
  time: string;
  msg: string;
  [field: string]: unknown;
}

/** Every stdout line as JSON; a line that is not JSON fails the test, naming it. */
function logLines(stdout: string): LogLine[] {
  return stdout.split("\n").filter((line) => line !== "").map((line) => {
    try {
      return JSON.parse(line) as LogLine;
    } catch {
      throw new Error(`not a JSON log line: ${line}`);
    }
  });
}

/** The line a call produced: it reaches our end of the pipe a moment after the answer. */
async function lineWhere(proc: ProcessOutput, what: string, test: (line: LogLine) => boolean): Promise<LogLine> {
  return vi.waitFor(() => {
    const line = logLines(proc.stdout()).find(test);
    if (!line) throw new Error(`no log line ${what} in:\n${proc.stdout()}`);
    return line;
  }, { timeout: 10_000, interval: 50 });
}

type Sidecar = Awaited<ReturnType<typeof startSidecarProcess>>;
const dirs: string[] = [];
const children: ChildProcess[] = [];

async function start(env: NodeJS.ProcessEnv): Promise<Sidecar> {
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-logs-"));
  dirs.push(dir);
  const sidecar = await startSidecarProcess(join(dir, "bulkhead.db"), env);
  children.push(sidecar.child);
  return sidecar;
}

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode !== null) continue;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const bearer = (token: string, more: Record<string, string> = {}) => {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  for (const [key, value] of Object.entries(more)) md.set(key, value);
  return md;
};

function check(client: DecisionServiceClient, request: DeepPartial<CheckRequest>, md: Metadata): Promise<CheckResponse> {
  return new Promise((resolve, reject) =>
    client.check(CheckRequest.fromPartial(request), md, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

const aliceExports = (requestId: string, actorId = "usr_alice"): DeepPartial<CheckRequest> => ({
  principal: { tenantId: "ten_acme", actorId, actorType: "user", requestId },
  action: "reports.export",
  resource: { type: "report", id: "rep_1", tenantId: "ten_acme" },
});

describe("bulkhead serve logs", () => {
  let sidecar: Sidecar;
  let client: DecisionServiceClient;
  beforeAll(async () => {
    sidecar = await start({
      BULKHEAD_CALLER_TOKENS: CALLER_TOKEN,
      BULKHEAD_STRIPE_WEBHOOK_SECRETS: WEBHOOK_SECRET,
      BULKHEAD_STRIPE_API_KEY: STRIPE_KEY,
      BULKHEAD_STRIPE_API_URL: "http://127.0.0.1:1", // never called: no event here needs Stripe's API
      BULKHEAD_ADMIN_TOKEN: ADMIN_TOKEN,
      BULKHEAD_DEPLOYMENT_SHA: DEPLOYMENT,
    });
    client = new DecisionServiceClient(sidecar.grpcAddress, credentials.createInsecure());
  });
  afterAll(() => client?.close());

  it("logs a Check as one info line with its request id, decision id, tenant, actor, action, result and reasons", async () => {
    const allowed = await check(client, aliceExports("req_log_allow"), bearer(CALLER_TOKEN));
    const line = await lineWhere(sidecar, "for req_log_allow", (l) => l.requestId === "req_log_allow");
    expect(line).toMatchObject({
      level: "info", method: "/bulkhead.v1.DecisionService/Check", code: "OK",
      decisionId: allowed.decisionId, tenantId: "ten_acme", plan: "pro", actorId: "usr_alice", action: "reports.export", result: "allow",
    });
    expect(allowed.decisionId).not.toBe("");

    // carol is a member of acme but globex is on the free plan: a deny is an answer, logged with its reasons.
    const denied = await check(client, {
      principal: { tenantId: "ten_globex", actorId: "usr_carol", actorType: "user", requestId: "req_log_deny" },
      action: "reports.export",
      resource: { type: "report", id: "rep_1", tenantId: "ten_globex" },
    }, bearer(CALLER_TOKEN));
    const deny = await lineWhere(sidecar, "for req_log_deny", (l) => l.requestId === "req_log_deny");
    expect(deny).toMatchObject({ level: "info", decisionId: denied.decisionId, tenantId: "ten_globex", plan: "free", result: "deny" });
    expect(deny.reasons).toContain("not_in_plan");
    expect(deny.reasons).toEqual(denied.reasons.map((r) => r.code));
  });

  it("logs a rejected webhook at warn", async () => {
    const payload = event("evt_log_forged", "customer.subscription.updated",
      subscriptionObject({ id: "sub_log", customer: "cus_log", status: "active", plan: "pro", tenantId: "ten_acme" }), nowSeconds());
    const answer = await deliver(sidecar.httpPort, payload, sign(payload, "whsec_not_the_configured_one", nowSeconds()));
    expect(answer.status).toBe(400);
    const line = await lineWhere(sidecar, "for the rejected webhook", (l) => l.route === "/webhooks/stripe" && l.level === "warn");
    expect(line.msg).toMatch(/stripe webhook rejected/);
  });

  it("never writes a caller token, admin token, API key, Stripe key or signing secret, wherever it was sent", async () => {
    const admin = adminClient(sidecar.grpcAddress, () => adminAuth(ADMIN_TOKEN));
    const created = await admin.call<{ keyId: string; apiKey: string }>("createApiKey", {
      tenantId: "ten_acme", name: "log-test", scopes: ["reports.export"], reason: "security: log redaction test",
    });
    admin.client.close();
    const apiKey = created.apiKey;
    const keySecret = apiKey.slice(apiKey.indexOf(".") + 1);
    expect(keySecret.length).toBeGreaterThan(20);

    // The key as the principal and again in a metadata header a client library might add.
    const withKey = await check(client, {
      principal: { apiKey, requestId: "req_log_key" }, action: "reports.export", resource: { type: "report", id: "rep_1", tenantId: "ten_acme" },
    }, bearer(CALLER_TOKEN, { "x-api-key": apiKey, "x-stripe-secret": WEBHOOK_SECRET }));
    expect(withKey.allow).toBe(true);
    // A token nobody configured: refused, logged, still never printed.
    const strangerToken = "stranger-token-log-test-0a9b8c7d";
    const refused = await check(client, aliceExports("req_log_stranger"), bearer(strangerToken)).catch((e: ServiceError) => e);
    expect((refused as ServiceError).code).toBe(status.UNAUTHENTICATED);
    // A webhook that quotes the signing secret and the Stripe key in its body, signed right and signed wrong.
    const payload = event("evt_log_secrets", "customer.subscription.updated",
      subscriptionObject({ id: "sub_log_2", customer: `cus ${WEBHOOK_SECRET} ${STRIPE_KEY}`, status: "active", plan: "pro", tenantId: "ten_acme" }), nowSeconds());
    expect((await deliver(sidecar.httpPort, payload, sign(payload, WEBHOOK_SECRET, nowSeconds()))).status).toBe(200);
    expect((await deliver(sidecar.httpPort, payload, `t=${nowSeconds()},v1=${WEBHOOK_SECRET}`)).status).toBe(400);

    // The lines these calls produced exist, so their absence below means something.
    const keyLine = await lineWhere(sidecar, "for req_log_key", (l) => l.requestId === "req_log_key");
    expect(keyLine).toMatchObject({ actorId: created.keyId, actorType: "api_key", result: "allow" });
    expect(keyLine.metadata).toHaveProperty("authorization"); // printed, censored: the search below is what checks it
    await lineWhere(sidecar, "for the stranger's Check", (l) => l.code === "UNAUTHENTICATED");
    await lineWhere(sidecar, "for the ingested webhook", (l) => l.eventId === "evt_log_secrets");
    await lineWhere(sidecar, "for the configuration", (l) => l.msg === "configuration loaded");

    const everything = sidecar.output();
    for (const secret of [CALLER_TOKEN, ADMIN_TOKEN, WEBHOOK_SECRET, STRIPE_KEY, apiKey, keySecret, strangerToken]) {
      expect(everything.includes(secret), `${secret} was logged`).toBe(false);
    }
  });

  it("writes nothing but JSON lines on stdout, each with level, time, msg and the deployment sha; stderr holds the ready line", () => {
    const lines = logLines(sidecar.stdout());
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      expect(LOG_LEVELS).toContain(line.level);
      expect(new Date(line.time).toISOString()).toBe(line.time);
      expect(typeof line.msg).toBe("string");
      expect(line.deploymentSha).toBe(DEPLOYMENT);
    }
    expect(sidecar.stderr()).toMatch(/^bulkhead: ready: gRPC on 127\.0\.0\.1:\d+, HTTP on 127\.0\.0\.1:\d+\n$/);
  });

  // Last in this sidecar's life: it breaks the store under it.
  it("logs an INTERNAL error at error with its cause", async () => {
    // Another process renames a table the next context resolution reads
    // (usr_bob was never resolved, so nothing is cached): a SqliteError
    // inside the sidecar, answered as INTERNAL STORE_FAILED.
    const db = new Database(join(dirs[0]!, "bulkhead.db"));
    db.exec("ALTER TABLE memberships RENAME TO memberships_moved");
    db.close();
    const failed = await check(client, aliceExports("req_log_internal", "usr_bob"), bearer(CALLER_TOKEN)).catch((e: ServiceError) => e);
    expect((failed as ServiceError).code).toBe(status.INTERNAL);
    const line = await lineWhere(sidecar, "for req_log_internal", (l) => l.requestId === "req_log_internal");
    expect(line).toMatchObject({ level: "error", code: "INTERNAL", errorCode: "STORE_FAILED" });
    const err = line.err as { message: string; stack: string; cause?: { type: string; message: string } };
    expect(err.stack).toMatch(/\n\s+at /);
    expect(err.cause).toMatchObject({ type: "SqliteError" });
    expect(err.cause!.message).toMatch(/memberships/);
  });
});

describe("BULKHEAD_LOG_LEVEL", () => {
  it("at warn writes no line per answered call, and still the warnings", async () => {
    const sidecar = await start({ BULKHEAD_LOG_LEVEL: "warn", BULKHEAD_STRIPE_WEBHOOK_SECRETS: WEBHOOK_SECRET });
    const client = new DecisionServiceClient(sidecar.grpcAddress, credentials.createInsecure());
    try {
      expect((await check(client, aliceExports("req_warn_level"), new Metadata())).allow).toBe(true);
      const payload = event("evt_warn_level", "customer.subscription.updated",
        subscriptionObject({ id: "sub_warn", customer: "cus_warn", status: "active", plan: "pro", tenantId: "ten_acme" }), nowSeconds());
      expect((await deliver(sidecar.httpPort, payload, sign(payload, "whsec_wrong_one_for_warn", nowSeconds()))).status).toBe(400);
      // The warning is written after the Check's line would have been: once it is here, the Check's would be too.
      await lineWhere(sidecar, "for the rejected webhook", (l) => l.level === "warn" && l.route === "/webhooks/stripe");
      const lines = logLines(sidecar.stdout());
      expect(lines.filter((l) => l.level === "info" || l.level === "debug")).toEqual([]);
      expect(lines.some((l) => l.requestId === "req_warn_level")).toBe(false);
    } finally {
      client.close();
    }
  });

  it("refuses a level it does not know at start, naming the variable and the flag", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-logs-bad-"));
    dirs.push(dir);
    const serve = (args: string[], env: NodeJS.ProcessEnv) =>
      promisify(execFile)(process.execPath, [CLI, "serve", "--db", join(dir, "b.db"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--no-watch", ...args], { env: { ...process.env, ...env } })
        .then(() => ({ code: 0, stdout: "", stderr: "" }), (error: { code: number; stdout: string; stderr: string }) => error);
    for (const [args, env] of [[[], { BULKHEAD_LOG_LEVEL: "loud" }], [["--log-level", "loud"], {}]] as const) {
      const { code, stdout, stderr } = await serve([...args], env);
      expect(code).toBe(2);
      expect(stderr).toContain("BULKHEAD_LOG_LEVEL (--log-level): 'loud' must be one of fatal, error, warn, info, debug, trace, silent");
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(stdout).toBe("");
    }
  });
});
