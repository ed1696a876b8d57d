import { credentials, Metadata } from "@grpc/grpc-js";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckRequest, DecisionServiceClient } from "../../src/gen/bulkhead/v1/decision.js";
import { startOtlpCollector } from "../support/otlp-collector.js";
import { startSidecarProcess } from "../support/processes.js";
import { checkRequest } from "../support/sidecar.js";

// `bulkhead serve` as a real process, configured by environment only: with
// BULKHEAD_OTLP_ENDPOINT it exports a Check's span (flushed on SIGTERM);
// without it, it never imports the OpenTelemetry SDK. What a process imports
// is recorded by module hooks (test/support/import-log.mjs).
const IMPORT_LOG_HOOK = join(import.meta.dirname, "..", "support", "import-log.mjs");
const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN_ID = "b7ad6b7169203331";
let dir: string;
let collector: Awaited<ReturnType<typeof startOtlpCollector>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bulkhead-tracing-"));
  collector = await startOtlpCollector();
});
afterAll(async () => {
  await collector.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(name: string, env: NodeJS.ProcessEnv) {
  const importLog = join(dir, `${name}.imports`);
  writeFileSync(importLog, "");
  const started = await startSidecarProcess(join(dir, `${name}.db`), { ...env, OTEL_IMPORT_LOG: importLog, NODE_OPTIONS: `--import ${IMPORT_LOG_HOOK}` });
  return { ...started, imported: () => readFileSync(importLog, "utf8").split("\n").filter(Boolean) };
}

function check(address: string, md: Metadata) {
  const client = new DecisionServiceClient(address, credentials.createInsecure());
  return new Promise<void>((resolve, reject) =>
    client.check(CheckRequest.fromPartial(checkRequest("ten_acme", "usr_alice", "reports.export") as never), md, (error) => {
      client.close();
      return error ? reject(error) : resolve();
    }),
  );
}

const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => child.once("exit", resolve));

describe("bulkhead serve", () => {
  it("without BULKHEAD_OTLP_ENDPOINT imports no OpenTelemetry SDK, only the no-op API", async () => {
    const sidecar = await serve("off", {});
    try {
      await check(sidecar.grpcAddress, new Metadata());
      const packages = new Set(sidecar.imported().map((url) => /\/node_modules\/@opentelemetry\/([^/]+)\//.exec(url)![1]));
      expect([...packages]).toEqual(["api"]);
    } finally {
      const exit = exited(sidecar.child);
      sidecar.child.kill("SIGTERM");
      await exit;
    }
  });

  it("with BULKHEAD_OTLP_ENDPOINT exports the Check's span as a child of its traceparent, flushed on SIGTERM", async () => {
    const sidecar = await serve("on", { BULKHEAD_OTLP_ENDPOINT: collector.endpoint, BULKHEAD_OTEL_SERVICE_NAME: "bulkhead-process" });
    const md = new Metadata();
    md.set("traceparent", `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`);
    await check(sidecar.grpcAddress, md);
    const exit = exited(sidecar.child);
    sidecar.child.kill("SIGTERM");
    expect(await exit).toBe(0);
    // The positive control of the test above: the same hooks do see the SDK when tracing is on.
    expect(sidecar.imported().some((url) => url.includes("/@opentelemetry/sdk-trace-base/"))).toBe(true);
    const span = collector.spans.find((s) => s.name === "bulkhead.v1.DecisionService/Check");
    expect(span).toMatchObject({ traceId: TRACE_ID, parentSpanId: PARENT_SPAN_ID, serviceName: "bulkhead-process" });
    expect(span!.attributes).toMatchObject({ "bulkhead.tenant_id": "ten_acme", "bulkhead.plan": "pro", "bulkhead.allow": true });
  });
});
