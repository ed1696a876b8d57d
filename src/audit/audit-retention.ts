import type { Clock } from "../clock.js";
import type { Db } from "../store/database.js";
import type { WriteGuard } from "../store/write-lock-backoff.js";
import { readAnchor, writeAnchor } from "./audit-anchor.js";
import type { AuditChainName } from "./audit-chain.js";

export interface RetentionRules {
  /** Rows older than this many days are pruned; 0 keeps rows of any age. */
  maxAgeDays: number;
  /** At most this many rows are kept; 0 sets no bound. */
  maxRecords: number;
}

const DAY_MS = 86_400_000;
/** Rows deleted per transaction, so a first prune of a large table never holds the write lock for long. */
const BATCH_ROWS = 5_000;

/**
 * Retention of one audit chain (ADR 57). Only a prefix in rowid order is
 * ever deleted, and in the same transaction the anchor moves to the last
 * deleted row, so `audit verify` still holds for what is kept. The newest
 * row is never deleted: SQLite hands out max(rowid) + 1, and an emptied
 * table would restart rowids below the anchor.
 *
 * The job cannot overlap itself (`running`), and each batch decides what to
 * delete inside its own IMMEDIATE transaction: two processes on one file
 * (`--workers`) take turns, and the second finds nothing left to delete.
 */
export class AuditRetention {
  private running: Promise<number> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly stmt;

  constructor(
    private readonly deps: { db: Db; chain: AuditChainName; rules: RetentionRules; clock: Clock; guard?: WriteGuard; log?: (message: string) => void },
  ) {
    const { db, chain } = deps;
    this.stmt = {
      firstYoung: db.prepare<[number], number>(`SELECT rowid FROM ${chain} WHERE at >= ? ORDER BY rowid LIMIT 1`).pluck(),
      nthNewest: db.prepare<[number], number>(`SELECT rowid FROM ${chain} ORDER BY rowid DESC LIMIT 1 OFFSET ?`).pluck(),
      newest: db.prepare<[], number>(`SELECT max(rowid) FROM ${chain}`).pluck(),
      oldest: db.prepare<[], number>(`SELECT min(rowid) FROM ${chain}`).pluck(),
      lastBefore: db.prepare(`SELECT rowid AS rowId, chain_hash AS hash FROM ${chain} WHERE rowid < ? ORDER BY rowid DESC LIMIT 1`),
      hashedBefore: db.prepare<[number], number>(`SELECT count(chain_hash) FROM ${chain} WHERE rowid < ?`).pluck(),
      deleteBefore: db.prepare(`DELETE FROM ${chain} WHERE rowid < ?`),
    };
  }

  get enabled(): boolean {
    return this.deps.rules.maxAgeDays > 0 || this.deps.rules.maxRecords > 0;
  }

  /** Runs the job every `intervalMs` (and once now); unref'd, it never holds the process up. */
  start(intervalMs: number): void {
    if (!this.enabled || this.timer) return;
    void this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), intervalMs).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Prunes what the rules allow; resolves with the rows this run deleted. A run already going is joined, not doubled. */
  runOnce(): Promise<number> {
    this.running ??= this.pruneAll().finally(() => (this.running = null));
    return this.running;
  }

  private async pruneAll(): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = this.pruneBatch();
      total += deleted;
      if (deleted < BATCH_ROWS) break;
      // Let Checks and journal imports run between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (total > 0) this.deps.log?.(`audit retention: pruned ${total} ${this.deps.chain} rows`);
    return total;
  }

  /** One transaction: what to delete is decided from the table as it is now, so a second process's run finds nothing. */
  private pruneBatch(): number {
    const { db, chain, guard, clock } = this.deps;
    try {
      guard?.require();
      const deleted = db.transaction(() => {
        const boundary = this.boundary(clock.now());
        if (boundary === null) return 0;
        const last = this.stmt.lastBefore.get(boundary) as { rowId: number; hash: string | null } | undefined;
        if (!last) return 0;
        const pruned = readAnchor(db, chain)?.records ?? 0;
        writeAnchor(db, chain, { rowId: last.rowId, hash: last.hash ?? "", records: pruned + this.stmt.hashedBefore.get(boundary)!, prunedAt: clock.now() });
        return this.stmt.deleteBefore.run(boundary).changes;
      }).immediate();
      guard?.writeSucceeded();
      return deleted;
    } catch (error) {
      guard?.writeFailed(error);
      this.deps.log?.(`audit retention: ${chain} not pruned this time: ${(error as Error).message}`);
      return 0;
    }
  }

  /** Rows with a rowid below the result are deleted; null when none may be. At most one batch, never the newest row. */
  private boundary(now: number): number | null {
    const { maxAgeDays, maxRecords } = this.deps.rules;
    const newest = this.stmt.newest.get();
    const oldest = this.stmt.oldest.get();
    if (newest == null || oldest == null) return null;
    let boundary = oldest;
    if (maxAgeDays > 0) boundary = Math.max(boundary, this.stmt.firstYoung.get(now - maxAgeDays * DAY_MS) ?? newest);
    if (maxRecords > 0) boundary = Math.max(boundary, this.stmt.nthNewest.get(maxRecords - 1) ?? oldest);
    boundary = Math.min(boundary, newest, oldest + BATCH_ROWS);
    return boundary > oldest ? boundary : null;
  }
}
