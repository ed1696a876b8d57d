import { mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PutMembershipRequest } from "../../src/gen/bulkhead/v1/admin.js";
import { BatchCheckRequest, CheckRequest, DecisionServiceClient, type BatchCheckResponse, type CheckResponse } from "../../src/gen/bulkhead/v1/decision.js";
import { adminClient, type AdminCall } from "../support/admin-client.js";
import { startSidecarProcess } from "../support/processes.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Issue 15, items 1, 8 and 9: a write lock held by another process, a
// SIGKILL right after answers went out, answers nobody received, and a
// restart on a corrupt file. Each is injected for real: a second process
// holding BEGIN EXCLUSIVE, a real SIGKILL, real deadlines, real corrupt pages.

const betterSqlite = createRequire(import.meta.url).resolve("better-sqlite3");

/** A second process that holds the database's write lock until its stdin closes. */
async function holdWriteLock(dbPath: string) {
  const script = `
    const db = new (require(${JSON.stringify(betterSqlite)}))(${JSON.stringify(dbPath)});
    db.exec("BEGIN EXCLUSIVE");
    console.log("locked");
    process.stdin.resume().on("end", () => { db.exec("COMMIT"); db.close(); process.exit(0); });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("locked") && resolve());
    child.once("exit", (code) => reject(new Error(`the lock holder exited with ${code}`)));
  });
  return {
    release: () => {
      child.stdin.end();
      return exited;
    },
  };
}

function checkWithDeadline(client: DecisionServiceClient, request: CheckRequest, ms: number): Promise<CheckResponse> {
  return new Promise((resolve, reject) =>
    client.check(request, new Metadata(), { deadline: Date.now() + ms }, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

const loggedRequestIds = (db: Database.Database, prefix: string) =>
  db.prepare("SELECT request_id FROM decision_log WHERE request_id LIKE ? ORDER BY request_id").pluck().all(`${prefix}%`) as string[];

describe("a write lock held by another process", () => {
  let sidecar: TestSidecar;
  let call: AdminCall;
  beforeAll(async () => {
    sidecar = await startSidecar({ runtime: { clock: testClock() } });
    ({ call } = adminClient(sidecar.grpcAddress));
  });
  afterAll(() => sidecar.close());

  it("does not stop Checks or health; writes retry off the event loop, then fail with STORE_BUSY; the decision log catches up after", async () => {
    const lock = await holdWriteLock(sidecar.bulkhead.config.dbPath);
    let released = false;
    try {
      const write = () =>
        call("putMembership", PutMembershipRequest.fromPartial({ tenantId: "ten_acme", membership: { actorId: "usr_locked", role: "viewer" }, reason: "customer_request: invite" }));
      const refused = (await write().catch((e) => e)) as ServiceError;
      expect(refused.code).toBe(status.UNAVAILABLE);
      expect(refused.metadata.get("bulkhead-error-code")).toEqual(["STORE_BUSY"]);
      // Checks go on being answered, each within a 1 s deadline, for longer
      // than the decision log's flush interval (which used to wait 5 s on the lock).
      for (let i = 0; i < 30; i++) {
        const request = CheckRequest.fromPartial({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId: `locked-${String(i).padStart(2, "0")}` } });
        expect((await checkWithDeadline(sidecar.client, request, 1_000)).allow).toBe(true);
        await new Promise((r) => setTimeout(r, 20));
      }
      const health = (await fetch(`http://127.0.0.1:${sidecar.httpPort}/healthz`).then((r) => r.json())) as Record<string, any>;
      expect(health.status).toBe("degraded");
      expect(health.store.write_lock).toMatch(/another process holds the database's write lock/);
      expect(health.audit.pending).toBeGreaterThan(0); // in the journal, waiting for the lock
      // A Check is not a write: readiness stays.
      expect((await fetch(`http://127.0.0.1:${sidecar.httpPort}/readyz`)).status).toBe(200);

      await lock.release();
      released = true;
      // Writes resume once the backoff lets one probe the lock (at most a second).
      let written: unknown;
      for (let i = 0; i < 40 && !written; i++) {
        written = await write().catch(() => undefined);
        if (!written) await new Promise((r) => setTimeout(r, 50));
      }
      expect(written).toBeTruthy();
      sidecar.bulkhead.decisionLog.flush();
      expect(loggedRequestIds(sidecar.bulkhead.db, "locked-")).toHaveLength(30);
      expect(sidecar.bulkhead.decisionLog.stats).toMatchObject({ dropped: 0, problem: null });
    } finally {
      if (!released) await lock.release();
    }
  }, 30_000);
});

describe("the decision log's guarantee", () => {
  it("keeps every decision a caller received when the sidecar is SIGKILLed right after answering", async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), "bulkhead-kill-")), "b.db");
    const first = await startSidecarProcess(dbPath);
    const client = new DecisionServiceClient(first.grpcAddress, credentials.createInsecure());
    const received: string[] = [];
    const killed = new Promise((resolve) => first.child.once("exit", resolve));
    // Four callers in a loop; the 200th answer to arrive triggers the SIGKILL
    // in the same callback, so the last answers are certainly younger than
    // any flush interval (an in-memory buffer lost them every time).
    let n = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (received.length < 200) {
          const requestId = `kill-${n++}`;
          const request = CheckRequest.fromPartial({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId } });
          const response = await checkWithDeadline(client, request, 10_000).catch(() => null);
          if (!response || received.length >= 200) break;
          received.push(response.decisionId);
          if (received.length === 200) first.child.kill("SIGKILL");
        }
      }),
    );
    client.close();
    await killed;
    expect(received).toHaveLength(200);

    // The next start imports what the killed process left in its journal.
    const second = await startSidecarProcess(dbPath);
    try {
      const db = new Database(dbPath, { readonly: true });
      const logged = new Set(db.prepare("SELECT decision_id FROM decision_log").pluck().all() as string[]);
      db.close();
      expect(received.filter((id) => !logged.has(id))).toEqual([]);
    } finally {
      second.child.kill("SIGKILL");
    }
  }, 60_000);

  it("loses no decision a caller received when the sidecar is SIGTERMed under load, and exits 0", async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), "bulkhead-term-")), "b.db");
    const sidecar = await startSidecarProcess(dbPath);
    const client = new DecisionServiceClient(sidecar.grpcAddress, credentials.createInsecure());
    const received: string[] = [];
    const exited = new Promise<number | null>((resolve) => sidecar.child.once("exit", (code) => resolve(code)));
    // Eight callers keep going through the drain: each answer that arrives is one the log must hold.
    let n = 0;
    let stopping = false;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (;;) {
          const requestId = `term-${n++}`;
          const request = CheckRequest.fromPartial({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId } });
          const response = await checkWithDeadline(client, request, 10_000).catch(() => null);
          if (!response) break; // refused or cancelled by the drain: not an answer
          received.push(response.decisionId);
          if (received.length === 300 && !stopping) {
            stopping = true;
            sidecar.child.kill("SIGTERM");
          }
        }
      }),
    );
    client.close();
    expect(await exited).toBe(0);
    expect(received.length).toBeGreaterThanOrEqual(300);
    // Nothing is imported by a later start: the shutdown itself flushed every received decision.
    const db = new Database(dbPath, { readonly: true });
    const logged = new Set(db.prepare("SELECT decision_id FROM decision_log").pluck().all() as string[]);
    db.close();
    expect(received.filter((id) => !logged.has(id))).toEqual([]);
  }, 60_000);

  it("logs no decision for a call whose deadline passed before its answer (all of a batch or none)", async () => {
    const sidecar = await startSidecar({ runtime: { clock: testClock() } });
    const expiredAtServer = async () =>
      (await sidecar.bulkhead.metrics.decisionErrors.get()).values.find((v) => v.labels.code === "CALL_EXPIRED")?.value ?? 0;
    try {
      // 1,000 items take milliseconds to decide: with a deadline that short,
      // it passes while (or before) they are evaluated. Tighter deadlines are
      // tried until one expires at the server, not only at the client.
      for (const [attempt, ms] of [3, 6, 12, 25, 50].entries()) {
        const before = await expiredAtServer();
        const checks = Array.from({ length: 1000 }, (_, i) => ({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId: `late-${attempt}-${i}` } }));
        const outcome = await new Promise<ServiceError | BatchCheckResponse>((resolve) =>
          sidecar.client.batchCheck(BatchCheckRequest.fromPartial({ checks }), new Metadata(), { deadline: Date.now() + ms }, (e, r) => resolve(e ?? r)),
        );
        await new Promise((r) => setTimeout(r, 100)); // the server is certainly done with the call
        sidecar.bulkhead.decisionLog.flush();
        const logged = loggedRequestIds(sidecar.bulkhead.db, `late-${attempt}-`);
        // Logged exactly when answered: all 1,000 or none.
        if ("results" in outcome) expect(logged).toHaveLength(1000);
        else {
          expect(outcome.code).toBe(status.DEADLINE_EXCEEDED);
          expect(logged).toEqual([]);
        }
        if ((await expiredAtServer()) > before) return;
      }
      throw new Error("no attempt expired at the server; the machine decides 1,000 checks faster than 50 ms?");
    } finally {
      await sidecar.close();
    }
  }, 30_000);
});

describe("a restart on a corrupt database", () => {
  it("refuses to start, naming the file and the problem, instead of reporting ready", async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), "bulkhead-corrupt-")), "b.db");
    const first = await startSidecarProcess(dbPath);
    const stopped = new Promise((resolve) => first.child.once("exit", (code, signal) => resolve([code, signal])));
    first.child.kill("SIGTERM"); // a clean stop checkpoints the WAL into the file
    expect(await stopped).toEqual([0, null]);
    // Overwrite one b-tree page past the schema with garbage, as a bad disk would.
    const pageSize = 4096;
    const pages = statSync(dbPath).size / pageSize;
    expect(pages, `${statSync(dbPath).size} bytes; ${readdirSync(dirname(dbPath))}`).toBeGreaterThan(8);
    const fd = openSync(dbPath, "r+");
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (pages - 3) * pageSize);
    closeSync(fd);
    const started = await startSidecarProcess(dbPath).then(
      (s) => {
        s.child.kill("SIGKILL");
        return "started";
      },
      (e: Error) => e.message,
    );
    expect(started).toMatch(/failed its integrity check/);
    expect(started).toContain(dbPath);
    expect(readFileSync(dbPath).length).toBe(pages * pageSize); // the file is left as it was for the operator
  }, 60_000);
});
