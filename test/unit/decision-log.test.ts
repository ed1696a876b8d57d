import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DecisionLog, journalPathFor, type DecisionRecord } from "../../src/audit/decision-log.js";
import { openDatabase, type Db } from "../../src/store/database.js";
import { BulkheadError } from "../../src/errors.js";
import { verifyChain } from "../../src/audit/audit-verify.js";

const record = (i: number): DecisionRecord => ({
  decisionId: `dec_${i}`, at: 1, tenantId: "ten_a", actorId: "usr_a", actorType: "user", action: "projects.read",
  resourceType: "project", resourceId: "p", resourceTenantId: "ten_a", allow: true, reasons: [],
  policyRevision: "r", storeRevision: 1, requestId: "", source: "workspace_route", impersonation: null,
});

const freshDb = (): Db => openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-log-")), "b.db"));
const rows = (db: Db) => db.prepare("SELECT decision_id FROM decision_log ORDER BY decision_id").pluck().all();
const droppedInStore = (db: Db) => db.prepare("SELECT value FROM meta WHERE key = 'decisions_dropped'").pluck().get() ?? 0;
/** The pid of a process that has exited, so its journal is an orphan. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!;

describe("DecisionLog with a journal", () => {
  it("has a record in the journal file when record() returns, and moves it to the table on flush", () => {
    const db = freshDb();
    const journal = journalPathFor(db.name)!;
    const log = new DecisionLog(db, { journal, flushIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) log.record(record(i));
    // Nothing is in the table yet, but a SIGKILL now would lose nothing.
    expect(readFileSync(journal, "utf8").trim().split("\n")).toHaveLength(5);
    expect(log.stats).toMatchObject({ pending: 5, written: 0 });
    log.flush();
    expect(rows(db)).toHaveLength(5);
    expect(log.stats).toMatchObject({ pending: 0, written: 5, dropped: 0 });
    expect(readFileSync(journal, "utf8")).toBe(""); // truncated once all of it is in the table
    log.close();
    expect(existsSync(journal)).toBe(false);
  });

  it("appends a batch's records in one write with together()", () => {
    const db = freshDb();
    const log = new DecisionLog(db, { journal: journalPathFor(db.name), flushIntervalMs: 60_000 });
    log.together(() => {
      for (let i = 0; i < 3; i++) log.record(record(i));
      expect(log.stats.pending).toBe(0); // held until the batch ends
    });
    expect(log.stats.pending).toBe(3);
    log.close();
    expect(rows(db)).toEqual(["dec_0", "dec_1", "dec_2"]);
  });

  it("imports the journal a killed process left, once, and counts a half-written line as dropped in the store", () => {
    const db = freshDb();
    const orphan = journalPathFor(db.name, deadPid())!;
    const lines = [record(1), record(2)].map((r) => JSON.stringify(r)).join("\n");
    writeFileSync(orphan, `${lines}\n${JSON.stringify(record(3)).slice(0, 40)}`); // killed mid-append
    const messages: string[] = [];
    const log = new DecisionLog(db, { journal: journalPathFor(db.name), flushIntervalMs: 60_000, log: (m) => messages.push(m) });
    expect(rows(db)).toEqual(["dec_1", "dec_2"]);
    expect(existsSync(orphan)).toBe(false);
    expect(droppedInStore(db)).toBe(1);
    expect(log.stats.droppedTotal).toBe(1);
    expect(messages.join("\n")).toMatch(/imported 2 records .*1 unreadable/);
    // The same journal imported again (two workers racing) adds nothing.
    writeFileSync(orphan, `${lines}\n`);
    new DecisionLog(db, { journal: journalPathFor(db.name, process.pid + 1_000_000), flushIntervalMs: 60_000 }).close();
    expect(rows(db)).toEqual(["dec_1", "dec_2"]);
    log.close();
  });

  it("leaves another live process's journal alone", () => {
    const db = freshDb();
    const live = journalPathFor(db.name, process.ppid)!; // the test runner's parent is alive
    writeFileSync(live, `${JSON.stringify(record(9))}\n`);
    new DecisionLog(db, { journal: journalPathFor(db.name), flushIntervalMs: 60_000 }).close();
    expect(rows(db)).toEqual([]);
    expect(existsSync(live)).toBe(true);
  });

  it("keeps records in the journal while the store refuses writes, and writes them once it takes them", () => {
    const db = freshDb();
    let locked = true;
    const guard = {
      require() {
        if (locked) throw new BulkheadError("STORE_BUSY", "locked");
      },
      writeFailed() {},
      writeSucceeded() {},
    };
    const log = new DecisionLog(db, { journal: journalPathFor(db.name), guard, flushIntervalMs: 60_000 });
    log.record(record(1));
    log.flush();
    expect(rows(db)).toEqual([]);
    expect(log.stats).toMatchObject({ pending: 1, dropped: 0, importFailures: 1, problem: null });
    locked = false;
    log.flush();
    expect(rows(db)).toEqual(["dec_1"]);
    log.close();
  });

  it("counts records the journal cannot take (a full disk), says why, and stores the count", () => {
    const db = freshDb();
    const journal = journalPathFor(db.name)!;
    symlinkSync("/dev/full", journal); // every write(2) fails with ENOSPC
    const messages: string[] = [];
    const log = new DecisionLog(db, { journal, flushIntervalMs: 60_000, log: (m) => messages.push(m) });
    log.record(record(1));
    log.together(() => [2, 3].forEach((i) => log.record(record(i))));
    expect(log.stats).toMatchObject({ dropped: 3, pending: 0 });
    expect(log.stats.problem).toMatch(/cannot be written.*ENOSPC/);
    expect(messages).toHaveLength(1); // said once, not per record
    log.flush();
    expect(droppedInStore(db)).toBe(3);
    expect(log.stats.droppedTotal).toBe(3);
  });
});

describe("DecisionLog's in-memory tail of the journal (ADR 80)", () => {
  const varied = (i: number): DecisionRecord => ({
    ...record(i), allow: i % 2 === 0, reasons: i % 3 ? ["not_member", "plan"] : [], requestId: `req_${i}`, resourceId: `p "${i}"\n`,
    impersonation: i % 4 === 0 ? { session_id: `imp_${i}`, staff_id: "stf_a", as_actor_id: "usr_a" } : null,
  });
  const table = (db: Db) => db.prepare("SELECT * FROM decision_log ORDER BY rowid").all();

  it("writes the same rows and chain hashes as reading the journal back, and the chain verifies", () => {
    const fromTail = freshDb();
    const readBack = freshDb();
    const sunk: string[] = [];
    const a = new DecisionLog(fromTail, { journal: journalPathFor(fromTail.name), flushIntervalMs: 60_000 });
    a.onWritten((records) => sunk.push(...records.map((r) => r.decisionId)));
    const b = new DecisionLog(readBack, { journal: journalPathFor(readBack.name, process.pid + 1_000_000), maxTail: 0, flushIntervalMs: 60_000 });
    for (const log of [a, b]) {
      for (let i = 0; i < 5; i++) log.record(varied(i));
      log.flush();
      log.together(() => [5, 6, 7].forEach((i) => log.record(varied(i))));
      log.record(varied(8));
      log.close();
    }
    expect(table(fromTail)).toHaveLength(9);
    expect(table(fromTail)).toEqual(table(readBack));
    expect(verifyChain(fromTail, "decision_log").problem).toBeNull();
    expect(sunk).toEqual(Array.from({ length: 9 }, (_, i) => `dec_${i}`));
  });

  it("reads the journal back when it holds bytes the tail does not describe, counting a line that is no record", () => {
    const db = freshDb();
    const journal = journalPathFor(db.name)!;
    const log = new DecisionLog(db, { journal, flushIntervalMs: 60_000 });
    log.record(record(1));
    appendFileSync(journal, "not a record\n");
    log.record(record(2));
    log.flush();
    expect(rows(db)).toEqual(["dec_1", "dec_2"]);
    expect(droppedInStore(db)).toBe(1);
    expect(readFileSync(journal, "utf8")).toBe(""); // all of it in the table
    log.record(record(3)); // the tail describes the emptied journal again
    log.close();
    expect(rows(db)).toEqual(["dec_1", "dec_2", "dec_3"]);
  });

  it("past maxTail while the store refuses writes, keeps only the journal and imports all of it once the store takes writes", () => {
    const db = freshDb();
    const journal = journalPathFor(db.name)!;
    let locked = true;
    const guard = { require() { if (locked) throw new BulkheadError("STORE_BUSY", "locked"); }, writeFailed() {}, writeSucceeded() {} };
    const log = new DecisionLog(db, { journal, guard, maxTail: 3, flushIntervalMs: 60_000 });
    for (let i = 0; i < 2; i++) log.record(record(i));
    log.flush();
    for (let i = 2; i < 6; i++) log.record(record(i));
    log.flush();
    expect(rows(db)).toEqual([]);
    expect(readFileSync(journal, "utf8").trim().split("\n")).toHaveLength(6);
    locked = false;
    log.flush();
    expect(rows(db)).toEqual(["dec_0", "dec_1", "dec_2", "dec_3", "dec_4", "dec_5"]);
    expect(log.stats).toMatchObject({ pending: 0, written: 6 });
    expect(readFileSync(journal, "utf8")).toBe("");
    log.close();
  });
});

describe("DecisionLog in memory (no journal)", () => {
  it("counts records it has no room for instead of blocking", () => {
    const db = freshDb();
    const log = new DecisionLog(db, { maxBuffered: 3, flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) log.record(record(i));
    expect(log.stats).toMatchObject({ pending: 3, dropped: 7 });
    log.flush();
    expect(rows(db)).toHaveLength(3);
    expect(droppedInStore(db)).toBe(7);
  });
});

describe("the decision log's guarantee under SIGKILL mid-run (ADR 29)", () => {
  /** Runs the recorder from `first` until `written` of its records are in the table, SIGKILLs it, and returns the next id it had not recorded. */
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
        if (inTable! >= written) child.kill("SIGKILL"); // mid-run: appends and flushes go on batch after batch
      }
    });
    await exited;
    return next;
  }

  it("loses nothing recorded when the process is SIGKILLed between or during flushes, and each next start imports it once", async () => {
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
