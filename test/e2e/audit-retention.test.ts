import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditRetention } from "../../src/audit/audit-retention.js";
import { DecisionLog, type DecisionRecord } from "../../src/audit/decision-log.js";
import { verifyChain } from "../../src/audit/audit-verify.js";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { openDatabase } from "../../src/store/database.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { DAY, testClock, TEST_START } from "../support/test-time.js";

// Decision-log retention (issue 17, ADR 57): "retention never breaks audit
// verify". A real sidecar on a test clock writes decisions; its retention
// job prunes by age and by count, and the built CLI verifies a copy of the
// store, untouched and then tampered with after the prune.
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "bulkhead-audit-retention-"));

function bulkhead(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const check = (sidecar: TestSidecar, i: number) =>
  sidecar.check({ principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project", id: `prj_${i}`, tenantId: "ten_acme" } });

describe("retention by age, then audit verify", () => {
  const clock = testClock();
  let sidecar: TestSidecar;
  let pruned: string;

  /** A copy of the pruned store with `tamper` applied through a plain SQLite connection. */
  function tampered(name: string, tamper: (db: Database.Database) => void = () => {}): string {
    const path = join(work, `${name}.db`);
    copyFileSync(pruned, path);
    const db = new Database(path);
    tamper(db);
    db.close();
    return path;
  }

  beforeAll(async () => {
    // The job's own timer is far off: the test runs it, so what it deletes does not depend on timing.
    sidecar = await startSidecar({ runtime: { clock }, config: { decisionLogRetention: { maxAgeDays: 30, maxRecords: 0 }, auditJobIntervalMs: 3_600_000 } });
    for (let i = 0; i < 6; i++) await check(sidecar, i);
    sidecar.bulkhead.decisionLog.flush();
    clock.set(TEST_START + 31 * DAY);
    for (let i = 6; i < 10; i++) await check(sidecar, i);
    sidecar.bulkhead.decisionLog.flush();
    expect(await sidecar.bulkhead.auditJobs.retention.runOnce()).toBe(6);
    expect(await sidecar.bulkhead.auditJobs.retention.runOnce(), "a second run finds nothing").toBe(0);
    sidecar.bulkhead.db.pragma("wal_checkpoint(TRUNCATE)");
    pruned = join(work, "pruned.db");
    copyFileSync(sidecar.bulkhead.config.dbPath, pruned);
  });
  afterAll(() => sidecar.close());

  it("keeps the young rows only, and verify passes from the anchor", () => {
    const rows = sidecar.bulkhead.db.prepare("SELECT rowid, at FROM decision_log ORDER BY rowid").all() as { rowid: number; at: number }[];
    expect(rows.map((r) => r.rowid)).toEqual([7, 8, 9, 10]);
    expect(rows.every((r) => r.at >= TEST_START + 31 * DAY)).toBe(true);
    const result = bulkhead("audit", "verify", "--db", tampered("intact"));
    expect(result.status, result.out).toBe(0);
    expect(result.out).toContain("ok   decision_log: 4 records verified");
    expect(result.out).toContain("from the retention anchor at rowid 6: 6 older records pruned");
  });

  it("still names a modified record after the prune", () => {
    const result = bulkhead("audit", "verify", "--db", tampered("modified", (db) => db.prepare("UPDATE decision_log SET allow = 0 WHERE rowid = 9").run()));
    expect(result.status).toBe(1);
    expect(result.out).toMatch(/FAIL decision_log: decision_log rowid 9 .* does not match the chain/);
  });

  it("names a deleted first kept record (a gap after the anchor)", () => {
    const result = bulkhead("audit", "verify", "--db", tampered("first-kept-deleted", (db) => db.prepare("DELETE FROM decision_log WHERE rowid = 7").run()));
    expect(result.status).toBe(1);
    expect(result.out).toContain("decision_log rowid 8");
    expect(result.out).toContain("rows 7..7 before it were deleted");
  });

  it("detects an anchor that does not match the first kept record", () => {
    const result = bulkhead("audit", "verify", "--db", tampered("anchor-changed", (db) => db.prepare("UPDATE audit_anchor SET hash = ? WHERE chain = 'decision_log'").run("0".repeat(64))));
    expect(result.status).toBe(1);
    expect(result.out).toContain("decision_log rowid 7");
    expect(result.out).toContain("does not chain from the retention anchor (rowid 6");
  });

  it("detects a pruned prefix with no anchor", () => {
    const result = bulkhead("audit", "verify", "--db", tampered("unanchored", (db) => db.prepare("DELETE FROM audit_anchor").run()));
    expect(result.status).toBe(1);
    expect(result.out).toContain("rows 1..6 are gone and no retention anchor records a prune");
  });

  it("detects an anchor moved past kept records, and rows deleted behind an anchor", () => {
    const moved = bulkhead("audit", "verify", "--db", tampered("anchor-moved", (db) => db.prepare("UPDATE audit_anchor SET row_id = 8").run()));
    expect(moved.status).toBe(1);
    expect(moved.out).toContain("is at or before the retention anchor (rowid 8)");
    const emptied = bulkhead("audit", "verify", "--db", tampered("emptied", (db) => db.prepare("DELETE FROM decision_log").run()));
    expect(emptied.status).toBe(1);
    expect(emptied.out).toContain("has a retention anchor at rowid 6 but no record after it");
  });

  it("appends after the prune on the same chain", async () => {
    await check(sidecar, 10);
    sidecar.bulkhead.decisionLog.flush();
    const report = verifyChain(sidecar.bulkhead.db, "decision_log");
    expect(report.problem).toBeNull();
    expect(report.head).toMatchObject({ rowId: 11, records: 11 });
  });
});

describe("retention by count, and checkpoints", () => {
  it("keeps the newest N; a checkpoint older than the anchor is a note, a newer one is checked in full", async () => {
    const sidecar = await startSidecar({ runtime: { clock: testClock() }, config: { decisionLogRetention: { maxAgeDays: 0, maxRecords: 3 }, auditJobIntervalMs: 3_600_000 } });
    try {
      for (let i = 0; i < 8; i++) await check(sidecar, i);
      sidecar.bulkhead.decisionLog.flush();
      const db = sidecar.bulkhead.config.dbPath;
      const before = join(work, "count-before.json");
      expect(bulkhead("audit", "checkpoint", "--db", db, "--out", before).status).toBe(0);
      expect(await sidecar.bulkhead.auditJobs.retention.runOnce()).toBe(5);
      const after = join(work, "count-after.json");
      expect(bulkhead("audit", "checkpoint", "--db", db, "--out", after).status).toBe(0);
      await check(sidecar, 8);
      sidecar.bulkhead.decisionLog.flush();

      const old = bulkhead("audit", "verify", "--db", db, "--checkpoint", before);
      expect(old.status, old.out).toBe(0);
      const newer = bulkhead("audit", "verify", "--db", db, "--checkpoint", after);
      expect(newer.status, newer.out).toBe(0);
      expect(newer.out).toContain("ok   decision_log: 4 records verified");
      // The checkpoint counts the pruned records too, so counts only grow.
      expect((JSON.parse(readFileSync(after, "utf8")) as { chains: { decision_log: { records: number } } }).chains.decision_log.records).toBe(8);
    } finally {
      await sidecar.close();
    }
  });

  it("is applied by the sidecar's own job", async () => {
    const sidecar = await startSidecar({ runtime: { clock: testClock() }, config: { decisionLogRetention: { maxAgeDays: 0, maxRecords: 2 }, auditJobIntervalMs: 20 } });
    try {
      for (let i = 0; i < 5; i++) await check(sidecar, i);
      sidecar.bulkhead.decisionLog.flush();
      const count = () => sidecar.bulkhead.db.prepare("SELECT count(*) FROM decision_log").pluck().get() as number;
      for (let i = 0; i < 400 && count() > 2; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(count()).toBe(2);
      expect(verifyChain(sidecar.bulkhead.db, "decision_log").problem).toBeNull();
    } finally {
      await sidecar.close();
    }
  });
});

describe("two processes pruning one file", () => {
  it("delete each row once between them, and the chain holds", async () => {
    const path = join(work, "shared.db");
    const clock = testClock();
    const writerDb = openDatabase(path);
    const log = new DecisionLog(writerDb, { journal: null, maxBuffered: 20_000 });
    const total = 12_500;
    for (let i = 0; i < total; i++) log.record(record(`dec_${i}`, TEST_START + i));
    log.close();
    const rules = { maxAgeDays: 0, maxRecords: 100 };
    // Two connections to the file, as two --workers processes have: their batches interleave on the event loop.
    const [a, b] = [openDatabase(path), openDatabase(path)].map((db) => new AuditRetention({ db, chain: "decision_log", rules, clock }));
    const deleted = await Promise.all([a!.runOnce(), b!.runOnce()]);
    expect(deleted[0]! + deleted[1]!).toBe(total - 100);
    const report = verifyChain(writerDb, "decision_log");
    expect(report.problem).toBeNull();
    expect(report.verified).toBe(100);
    expect(report.head?.records).toBe(total);
    writerDb.close();
  });
});

describe("a pruned prefix of rows written before hashing (migration 9)", () => {
  it("leaves an anchor with an empty hash, from which the first hashed row chains; a change to it is still found", async () => {
    const path = join(work, "unchained-prefix.db");
    const db = openDatabase(path);
    const before = new DecisionLog(db, { journal: null, maxBuffered: 100 });
    for (let i = 0; i < 3; i++) before.record(record(`dec_old_${i}`, TEST_START + i));
    before.close();
    // As rows written before the chain existed: no hash. The next row starts a chain from "".
    db.prepare("UPDATE decision_log SET chain_hash = NULL").run();
    const after = new DecisionLog(db, { journal: null, maxBuffered: 100 });
    for (let i = 0; i < 3; i++) after.record(record(`dec_new_${i}`, TEST_START + 10 + i));
    after.close();
    expect(verifyChain(db, "decision_log")).toMatchObject({ problem: null, unchained: 3, verified: 3 });

    // Keep the newest 3: the whole unchained prefix goes, and the anchor has no hash to carry.
    const retention = new AuditRetention({ db, chain: "decision_log", rules: { maxAgeDays: 0, maxRecords: 3 }, clock: testClock() });
    expect(await retention.runOnce()).toBe(3);
    const anchor = db.prepare("SELECT row_id AS rowId, hash, records FROM audit_anchor WHERE chain = 'decision_log'").get();
    expect(anchor).toEqual({ rowId: 3, hash: "", records: 0 });
    expect(verifyChain(db, "decision_log")).toMatchObject({ problem: null, unchained: 0, verified: 3 });

    db.prepare("UPDATE decision_log SET allow = 0 WHERE decision_id = 'dec_new_0'").run();
    expect(verifyChain(db, "decision_log").problem).toMatch(/does not chain from the retention anchor \(rowid 3/);
    db.close();
  });
});

function record(decisionId: string, at: number): DecisionRecord {
  return {
    decisionId, at, tenantId: "ten_acme", actorId: "usr_alice", actorType: "user", action: "projects.read", resourceType: "project", resourceId: "prj_1",
    resourceTenantId: "ten_acme", allow: true, reasons: [], policyRevision: "p1", storeRevision: 1, requestId: decisionId, source: "test", impersonation: null,
  };
}
