import { credentials } from "@grpc/grpc-js";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckRequest, DecisionServiceClient, type CheckResponse } from "../../src/gen/bulkhead/v1/decision.js";
import { ConsumeRequest, EntitlementServiceClient, type ConsumeResponse } from "../../src/gen/bulkhead/v1/entitlements.js";
import { CLI, spawnUntilServing } from "../support/processes.js";

// `bulkhead serve --workers 2` as a real child process: a node:cluster primary
// and two workers on the same gRPC port and the same SQLite file. Each client
// below has its own connection (no shared subchannel pool), and cluster hands
// connections to workers round-robin, so the clients are spread over both.
const CLIENTS = 4;
let dir: string;
let server: ChildProcess;
let address: string;
let clients: DecisionServiceClient[];

const channelOptions = { "grpc.use_local_subchannel_pool": 1 };
const check = (client: DecisionServiceClient, action: string) =>
  new Promise<CheckResponse>((resolve, reject) =>
    client.check(
      CheckRequest.fromPartial({
        principal: { tenantId: "ten_acme", actorId: "usr_alice", actorType: "user" },
        action,
        resource: { type: "report", id: "rep_1", tenantId: "ten_acme" },
      }),
      (error, response) => (error ? reject(error) : resolve(response)),
    ),
  );

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bulkhead-workers-"));
  const started = await spawnUntilServing(
    process.execPath,
    [CLI, "serve", "--workers", "2", "--demo", "--db", join(dir, "b.db"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--no-watch"],
    { BULKHEAD_ADMIN_TOKEN: "workers-test-admin" },
    2, // a ready line per worker
  );
  server = started.child;
  // In a cluster, listen(0) gives every worker the same port.
  const [first, second] = started.addresses;
  expect(first!.grpcAddress).toBe(second!.grpcAddress);
  address = first!.grpcAddress;
  clients = Array.from({ length: CLIENTS }, () => new DecisionServiceClient(address, credentials.createInsecure(), channelOptions));
});

afterAll(async () => {
  for (const c of clients ?? []) c.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("serve --workers 2", () => {
  it("answers Checks on every connection", async () => {
    for (const client of clients) {
      expect((await check(client, "projects.read")).allow).toBe(true);
      expect((await check(client, "billing.update")).allow).toBe(true);
    }
  });

  it("makes a write acknowledged by one worker visible to the next Check on the other", async () => {
    // Every connection (so both workers) has alice's context cached, allowed.
    for (const client of clients) expect((await check(client, "reports.export")).allow).toBe(true);
    const entitlements = new EntitlementServiceClient(address, credentials.createInsecure(), channelOptions);
    // The demo has used 12 of 100 exports; take the rest.
    const consumed = await new Promise<ConsumeResponse>((resolve, reject) =>
      entitlements.consume(
        ConsumeRequest.fromPartial({ tenantId: "ten_acme", meter: "exports.csv.monthly", amount: 88, idempotencyKey: "workers-test-1" }),
        (error, response) => (error ? reject(error) : resolve(response)),
      ),
    );
    entitlements.close();
    expect(consumed.allowed).toBe(true);
    // No min_revision: freshness must come from the shared store alone.
    for (const client of clients) {
      const after = await check(client, "reports.export");
      expect(after.allow).toBe(false);
      expect(after.reasons.map((r) => r.code)).toEqual(["limit_reached"]);
    }
  });

  it("replaces a worker that dies and keeps answering", async () => {
    const { execFileSync } = await import("node:child_process");
    const workers = execFileSync("pgrep", ["-P", String(server.pid)], { encoding: "utf8" }).trim().split("\n").map(Number);
    expect(workers).toHaveLength(2);
    process.kill(workers[0]!, "SIGKILL");
    let replaced: number[] = [];
    for (let i = 0; i < 100 && replaced.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      replaced = execFileSync("pgrep", ["-P", String(server.pid)], { encoding: "utf8" }).trim().split("\n").map(Number).filter((p) => p !== workers[0]);
    }
    expect(replaced).toHaveLength(2);
    // Fresh connections reach whichever workers are up.
    const fresh = Array.from({ length: CLIENTS }, () => new DecisionServiceClient(address, credentials.createInsecure(), channelOptions));
    try {
      for (const client of fresh) expect((await check(client, "projects.read")).allow).toBe(true);
    } finally {
      fresh.forEach((c) => c.close());
    }
  });

  it("stops the workers and exits 0 on SIGTERM", async () => {
    const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
    server.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
