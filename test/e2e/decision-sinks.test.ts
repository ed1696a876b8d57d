import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DecisionEvent } from "../../src/audit/decision-event.js";
import type { DecisionRecord } from "../../src/audit/decision-log.js";
import { HttpSink } from "../../src/audit/decision-sinks.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { TEST_START } from "../support/test-time.js";

// Decision-log sinks (issue 17, ADR 71): a real sidecar writing OPA-shaped
// events to a JSON lines file and to a real HTTP collector, and the HTTP
// sink against a collector that goes down, comes back, and refuses.
const work = mkdtempSync(join(tmpdir(), "bulkhead-sinks-"));

/** A collector as OPA's decision-log API has it: POST, gzip'd JSON array. Answers `status()` (200 by default). */
async function collector(port = 0) {
  const events: DecisionEvent[] = [];
  let status = () => 200;
  const server: Server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const code = status();
      if (code === 200) {
        expect(request.headers["content-encoding"]).toBe("gzip");
        events.push(...(JSON.parse(gunzipSync(Buffer.concat(chunks)).toString()) as DecisionEvent[]));
      }
      response.writeHead(code).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    events, server, port: (server.address() as { port: number }).port,
    answer(code: number) { status = () => code; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const until = async (predicate: () => boolean, what: string) => {
  for (let i = 0; i < 600 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!predicate()) throw new Error(`timed out waiting for ${what}`);
};

describe("a sidecar with a file and an HTTP sink", () => {
  const file = join(work, "decisions.jsonl");
  let sidecar: TestSidecar;
  let http: Awaited<ReturnType<typeof collector>>;

  beforeAll(async () => {
    http = await collector();
    sidecar = await startSidecar({
      config: { decisionSinks: { file, url: `http://127.0.0.1:${http.port}/logs`, masks: ["/input/principal/actor_id"], maxBuffered: 100 } },
    });
    await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"));
    await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"));
    sidecar.bulkhead.decisionLog.flush();
  });
  afterAll(async () => {
    await sidecar.close();
    await http.close();
  });

  it("writes each decision in the table as one OPA-shaped event per line, masked", () => {
    const events = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as DecisionEvent);
    const rows = sidecar.bulkhead.db.prepare("SELECT decision_id, allow, reasons, policy_revision FROM decision_log ORDER BY rowid").all() as
      { decision_id: string; allow: number; reasons: string; policy_revision: string }[];
    expect(events.map((e) => e.decision_id)).toEqual(rows.map((r) => r.decision_id));
    const [allowed, denied] = events;
    expect(allowed).toMatchObject({
      path: "bulkhead/decision",
      input: { principal: { tenant_id: "ten_acme", actor_type: "user" }, action: "projects.read", resource: { tenant_id: "ten_acme" } },
      result: { allow: true, reasons: [] },
      bundles: { bulkhead: { revision: rows[0]!.policy_revision } },
      labels: { version: expect.any(String), id: expect.stringMatching(/:\d+$/) },
    });
    expect(denied!.result).toEqual({ allow: false, reasons: ["wrong_tenant"] });
    expect(Date.parse(allowed!.timestamp)).not.toBeNaN();
    for (const e of events) expect(e.input.principal, "masked").not.toHaveProperty("actor_id");
    expect(readFileSync(file, "utf8")).not.toContain("usr_alice");
  });

  it("posts the same events to the collector, and counts them in /metrics", async () => {
    await until(() => http.events.length === 2, "two events at the collector");
    expect(http.events.map((e) => e.decision_id)).toEqual(readFileSync(file, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as DecisionEvent).decision_id));
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/bulkhead_decision_sink_sent_total\{sink="file"\} 2/);
    expect(metrics).toMatch(/bulkhead_decision_sink_sent_total\{sink="http"\} 2/);
  });
});

describe("the HTTP sink", () => {
  let n = 0;
  const records = (count: number): DecisionRecord[] =>
    Array.from({ length: count }, () => {
      const i = n++;
      return {
        decisionId: `dec_${i}`, at: TEST_START + i, tenantId: "ten_acme", actorId: "usr_alice", actorType: "user", action: "projects.read", resourceType: "project",
        resourceId: `prj_${i}`, resourceTenantId: "ten_acme", allow: true, reasons: [], policyRevision: "p1", storeRevision: 1, requestId: `req_${i}`, source: "test", impersonation: null,
      };
    });
  const shape = { labels: {}, masks: [] };

  it("holds events while its endpoint is down, drops the oldest past its buffer, and delivers the newest when it is back", async () => {
    const http = await collector();
    const port = http.port;
    const sink = new HttpSink({ url: `http://127.0.0.1:${port}/logs`, maxBuffered: 5, maxBatch: 3, flushIntervalMs: 10, minBackoffMs: 20, maxBackoffMs: 80 }, shape);
    sink.send(records(2));
    await until(() => http.events.length === 2 && sink.stats.sent === 2, "the first two");
    await http.close();
    sink.send(records(4));
    await until(() => sink.stats.buffered === 4, "four held");
    sink.send(records(4)); // 8 held would be over 5: the 3 oldest go
    expect(sink.stats.dropped.buffer_full).toBe(3);
    const back = await collector(port);
    // The collector holds a batch before its answer reaches the sink: wait for both.
    await until(() => back.events.length === 5 && sink.stats.buffered === 0, "the five newest, acknowledged");
    expect(back.events.map((e) => e.decision_id)).toEqual(["dec_5", "dec_6", "dec_7", "dec_8", "dec_9"]);
    expect(sink.stats).toMatchObject({ sent: 7, buffered: 0, dropped: { buffer_full: 3, rejected: 0 } });
    await sink.close();
    await back.close();
  });

  it("retries a 503 and drops (counted) a batch the endpoint refuses with a 400", async () => {
    const http = await collector();
    const sink = new HttpSink({ url: `http://127.0.0.1:${http.port}/logs`, maxBuffered: 100, flushIntervalMs: 10, minBackoffMs: 20, maxBackoffMs: 40 }, shape);
    http.answer(503);
    sink.send(records(2));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(sink.stats).toMatchObject({ sent: 0, buffered: 2 });
    http.answer(200);
    await until(() => http.events.length === 2 && sink.stats.sent === 2, "delivery after the 503s");
    http.answer(400);
    sink.send(records(3));
    await until(() => sink.stats.dropped.rejected === 3, "the refused batch counted");
    expect(sink.stats).toMatchObject({ sent: 2, buffered: 0 });
    await sink.close();
    await http.close();
  });

  it("gives up at close when the endpoint is down, within its deadline", async () => {
    const sink = new HttpSink({ url: "http://127.0.0.1:1/logs", maxBuffered: 10, flushIntervalMs: 10, timeoutMs: 200 }, shape);
    sink.send(records(3));
    await sink.close(500);
    expect(sink.stats).toMatchObject({ sent: 0, buffered: 0, dropped: { shutdown: 3 } });
  });

  it("aborts a POST the endpoint never answers when close runs out of time, and counts what it held", async () => {
    const silent = createServer(() => {}); // takes the request, never answers
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const sink = new HttpSink({ url: `http://127.0.0.1:${(silent.address() as { port: number }).port}/logs`, maxBuffered: 10, flushIntervalMs: 10, timeoutMs: 60_000 }, shape);
    sink.send(records(4));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await sink.close(200); // bounded by its deadline, not by the 60 s POST timeout (the test's own timeout would catch a hang)
    expect(sink.stats).toMatchObject({ sent: 0, buffered: 0, dropped: { shutdown: 4 } });
    silent.closeAllConnections();
    silent.close();
  });
});

describe("configuration", () => {
  it.each([
    [{ BULKHEAD_DECISION_LOG_URL: "collector:4318" }, /BULKHEAD_DECISION_LOG_URL: 'collector:4318' must be http/],
    [{ BULKHEAD_DECISION_LOG_URL: "not a url" }, /BULKHEAD_DECISION_LOG_URL: 'not a url' is not a URL/],
    [{ BULKHEAD_DECISION_LOG_URL: "https://u:s3cret@collector/logs" }, /BULKHEAD_DECISION_LOG_URL: credentials in the URL are refused/],
    [{ BULKHEAD_DECISION_LOG_FILE: "-", BULKHEAD_DECISION_LOG_MASK: "/result/allow" }, /BULKHEAD_DECISION_LOG_MASK: '\/result\/allow' must be a JSON pointer under \/input or \/bulkhead/],
    [{ BULKHEAD_DECISION_LOG_MASK: "/input/principal/actor_id" }, /BULKHEAD_DECISION_LOG_MASK is set but neither/],
    [{ BULKHEAD_DECISION_LOG_FILE: "-", BULKHEAD_DECISION_LOG_SINK_BUFFER: "0" }, /BULKHEAD_DECISION_LOG_SINK_BUFFER/],
  ])("refuses %j", (env, message) => {
    expect(() => loadConfig(env, {})).toThrow(ConfigError);
    expect(() => loadConfig(env, {})).toThrow(message);
  });

  it("reads a file sink, stdout and masks", () => {
    expect(loadConfig({ BULKHEAD_DECISION_LOG_FILE: "-", BULKHEAD_DECISION_LOG_MASK: "/input/principal/actor_id,/bulkhead/request_id" }, {}).decisionSinks).toEqual({
      file: "-", url: undefined, masks: ["/input/principal/actor_id", "/bulkhead/request_id"], maxBuffered: 10_000,
    });
  });
});
