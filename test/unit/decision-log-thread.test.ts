import Database from "better-sqlite3";
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DecisionLog, journalPathFor, type DecisionRecord } from "../../src/audit/decision-log.js";
import { DecisionLogThread } from "../../src/audit/decision-log-thread.js";
import { verifyChain } from "../../src/audit/audit-verify.js";
import { openDatabase, type Db } from "../../src/store/database.js";
import { WriteLockBackoff } from "../../src/store/write-lock-backoff.js";

// ADR 91: the table is written by a worker thread with its own connection.
// These run the compiled worker (dist/, `npm run build:ts`), as serve does.

const record = (i: number): DecisionRecord => ({
  decisionId: `dec_${i}`, at: 1, tenantId: "ten_a", actorId: "usr_a", actorType: "user", action: "projects.read",
  resourceType: "project", resourceId: `p "${i}"\n`, resourceTenantId: "ten_a", allow: i % 2 === 0, reasons: i % 3 ? ["not_member"] : [],
  policyRevision: "r", storeRevision: 1, requestId: `req_${i}`, source: "workspace_route",
  impersonation: i % 4 === 0 ? { session_id: `imp_${i}`, staff_id: "stf_a", as_actor_id: "usr_a" } : null,
});

const freshDb = (): Db => openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-logthread-")), "b.db"));
const rows = (db: Db) => db.prepare("SELECT decision_id FROM decision_log ORDER BY rowid").pluck().all();
const droppedInStore = (db: Db) => db.prepare("SELECT value FROM meta WHERE key = 'decisions_dropped'").pluck().get() ?? 0;
const withThread = (db: Db, options: ConstructorParameters<typeof DecisionLog>[1] = {}) => {
  const journal = journalPathFor(db.name)!;
  return new DecisionLog(db, { journal, thread: new DecisionLogThread(db.name, journal), flushIntervalMs: 60_000, ...options });
};
const until = async (done: () => boolean, ms = 10_000) => {
  const deadline = performance.now() + ms;
  while (!done() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  return done();
};

describe("DecisionLog with its worker thread (ADR 91)", () => {
  it("inserts and commits on the worker while the serving thread is busy, then takes the reply", async () => {
    const db = freshDb();
    const log = withThread(db, { flushIntervalMs: 0 });
    for (let i = 0; i < 2_000; i++) log.record(record(i));
    await new Promise((resolve) => setTimeout(resolve, 0)); // the log's timer ran first: the batch is posted
    // This thread now never returns to its event loop; another connection sees the rows arrive anyway.
    const reader = new Database(db.name, { readonly: true });
    const count = reader.prepare("SELECT COUNT(*) FROM decision_log").pluck();
    const deadline = performance.now() + 10_000;
    while ((count.get() as number) < 2_000 && performance.now() < deadline);
    reader.close();
    expect(rows(db)).toHaveLength(2_000);
    expect(log.stats).toMatchObject({ written: 0, pending: 2_000 }); // the reply is not taken yet
    expect(await until(() => log.stats.written === 2_000)).toBe(true);
    expect(log.stats.pending).toBe(0);
    expect(readFileSync(journalPathFor(db.name)!, "utf8")).toBe(""); // truncated after the reply said all of it is in
    log.close();
  });

  it("writes the rows, chain hashes and sink batches the serving thread writes", () => {
    const threaded = freshDb();
    const local = freshDb();
    const sunk: Record<string, string[]> = { threaded: [], local: [] };
    const a = withThread(threaded);
    const b = new DecisionLog(local, { journal: journalPathFor(local.name), flushIntervalMs: 60_000 });
    a.onWritten((records) => sunk.threaded!.push(...records.map((r) => r.decisionId)));
    b.onWritten((records) => sunk.local!.push(...records.map((r) => r.decisionId)));
    for (const log of [a, b]) {
      for (let i = 0; i < 5; i++) log.record(record(i));
      log.flush();
      log.together(() => [5, 6, 7].forEach((i) => log.record(record(i))));
      log.record(record(8));
      log.close();
    }
    const table = (db: Db) => db.prepare("SELECT * FROM decision_log ORDER BY rowid").all();
    expect(table(threaded)).toHaveLength(9);
    expect(table(threaded)).toEqual(table(local));
    expect(verifyChain(threaded, "decision_log").problem).toBeNull();
    expect(sunk.threaded).toEqual(sunk.local);
    expect(a.stats).toMatchObject({ pending: 0, written: 9 });
  });

  it("tells the write guard the worker's SQLITE_BUSY, so writes back off, and keeps the journal until the table takes it", () => {
    const db = freshDb();
    let now = 0;
    const guard = new WriteLockBackoff(undefined, () => {}, () => now);
    const log = withThread(db, { guard });
    const holder = new Database(db.name);
    holder.exec("BEGIN EXCLUSIVE"); // another connection holds the write lock
    log.record(record(1));
    log.flush();
    expect(guard.locked).toBe(true);
    expect(log.stats).toMatchObject({ pending: 1, written: 0, importFailures: 1 });
    log.flush(); // refused by the guard without asking the worker
    expect(log.stats.importFailures).toBe(2);
    holder.exec("COMMIT");
    holder.close();
    now += 1_000; // past the backoff
    log.flush();
    expect(guard.locked).toBe(false);
    expect(rows(db)).toEqual(["dec_1"]);
    expect(log.stats).toMatchObject({ pending: 0, written: 1 });
    log.close();
  });

  it("counts a line that is no record and the drops of a failed append in the store, as the serving thread does", () => {
    const db = freshDb();
    const log = withThread(db);
    log.record(record(1));
    appendFileSync(journalPathFor(db.name)!, "not a record\n");
    log.record(record(2));
    log.flush();
    expect(rows(db)).toEqual(["dec_1", "dec_2"]);
    expect(droppedInStore(db)).toBe(1);
    expect(log.stats).toMatchObject({ pending: 0, written: 2, dropped: 1, droppedTotal: 1 });
    log.close();

    const full = freshDb();
    symlinkSync("/dev/full", journalPathFor(full.name)!); // every append fails with ENOSPC
    const failing = withThread(full);
    failing.record(record(3));
    failing.flush();
    expect(droppedInStore(full)).toBe(1);
    expect(failing.stats).toMatchObject({ dropped: 1, droppedTotal: 1 });
    failing.close();
  });

  it("writes on the serving thread once the worker is gone, losing nothing", () => {
    const db = freshDb();
    const journal = journalPathFor(db.name)!;
    const thread = new DecisionLogThread(db.name, journal);
    const messages: string[] = [];
    const log = new DecisionLog(db, { journal, thread, flushIntervalMs: 60_000, log: (m) => messages.push(m) });
    log.record(record(1));
    log.flush();
    thread.stop(); // as if it died
    log.record(record(2));
    log.flush();
    expect(rows(db)).toEqual(["dec_1", "dec_2"]);
    expect(messages.join("\n")).toMatch(/writing the table on the serving thread/);
    log.record(record(3));
    log.close();
    expect(rows(db)).toEqual(["dec_1", "dec_2", "dec_3"]);
  });
});

describe("the decision log's guarantee with the worker thread (ADR 29, 91)", () => {
  /** Runs the recorder from `first` until its worker has written `written` records, SIGKILLs it, and returns the next id it had not recorded. */
  async function recordUntilKilled(dbPath: string, first: number, written: number): Promise<number> {
    const child = spawn(process.execPath, [join(import.meta.dirname, "..", "support", "decision-log-kill-worker.mjs"), dbPath, String(first)], { stdio: ["ignore", "pipe", "inherit"] });
    let next = first;
    let buffered = "";
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.stdout.on("data", (chunk: Buffer) => {
      const lines = (buffered + chunk.toString()).split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const [recorded, inTable] = line.split(" ").map(Number);
        next = recorded!;
        if (inTable! >= written) child.kill("SIGKILL"); // mid-run: the worker is writing batch after batch
      }
    });
    await exited;
    return next;
  }

  it("loses nothing recorded when the process is SIGKILLed while its worker writes, and the next start imports it once", async () => {
    const db = freshDb();
    const dbPath = db.name;
    // Three lives on one file; each start imports the journal the killed one before it left.
    let next = 0;
    for (const written of [500, 2_000, 5_000]) next = await recordUntilKilled(dbPath, next, written);
    new DecisionLog(db, { journal: journalPathFor(dbPath), flushIntervalMs: 60_000 }).close(); // the last start
    const logged = new Set(rows(db) as string[]);
    const missing = Array.from({ length: next }, (_, i) => `dec_${i}`).filter((id) => !logged.has(id));
    expect(next).toBeGreaterThan(5_000);
    expect(missing).toEqual([]);
    expect(verifyChain(db, "decision_log").problem).toBeNull();
  }, 60_000);
});
