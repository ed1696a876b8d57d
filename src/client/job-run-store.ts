/**
 * Which tenant jobs have run, so {@link runTenantJob} gives a job retried by
 * its queue exactly one effect. Keys are per tenant: tenant B cannot burn or
 * probe tenant A's idempotency keys.
 */

/** What a claim found. `claimed`: this run may go ahead; the others mean skip it. */
export type JobClaim = "claimed" | "done" | "denied" | "running";

/** Where job runs are recorded. Methods may be synchronous or return promises. */
export interface JobRunStore {
  /** Atomically claims `(tenantId, key)` for one run; a `running` claim older than the lease may be taken over (the worker died). */
  claim(tenantId: string, key: string, now: number): JobClaim | Promise<JobClaim>;
  /** Records the final outcome; later claims answer it. */
  finish(tenantId: string, key: string, outcome: "done" | "denied", now: number): void | Promise<void>;
  /** Gives the claim back (the run failed or Bulkhead did not answer), so the queue's retry runs it. */
  release(tenantId: string, key: string): void | Promise<void>;
}

/**
 * The part of a better-sqlite3 `Database` this store uses, typed
 * structurally: the host passes its own driver instance and Bulkhead's
 * client never loads a SQLite driver of its own.
 */
export interface SqliteDatabaseLike {
  exec(sql: string): unknown;
  prepare(sql: string): { run(...params: unknown[]): { changes: number }; get(...params: unknown[]): unknown };
}

/** Options for {@link SqliteJobRunStore}. */
export interface SqliteJobRunStoreOptions {
  /** Table name (created when missing); default `bulkhead_job_runs`. */
  table?: string;
  /** How long a `running` claim holds before another worker may take it over (default 15 minutes). */
  leaseMs?: number;
}

/**
 * {@link JobRunStore} in the host's own SQLite database (better-sqlite3).
 * One upsert claims, so two workers racing on the same job, in one process
 * or several sharing the file, cannot both run it.
 */
export class SqliteJobRunStore implements JobRunStore {
  private readonly leaseMs: number;
  private readonly claimStmt;
  private readonly stateStmt;
  private readonly finishStmt;
  private readonly releaseStmt;

  /** Creates the table when missing; `db` is the host's better-sqlite3 `Database`. */
  constructor(db: SqliteDatabaseLike, options: SqliteJobRunStoreOptions = {}) {
    const table = options.table ?? "bulkhead_job_runs";
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) throw new TypeError(`table: '${table}' is not a plain SQL identifier`);
    this.leaseMs = options.leaseMs ?? 15 * 60_000;
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (
      tenant_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('running', 'done', 'denied')),
      claimed_at INTEGER NOT NULL, finished_at INTEGER,
      PRIMARY KEY (tenant_id, idempotency_key))`);
    // Inserted, or a stale running claim taken over; a finished one is never touched.
    this.claimStmt = db.prepare(`INSERT INTO ${table} (tenant_id, idempotency_key, state, claimed_at) VALUES (?, ?, 'running', ?)
      ON CONFLICT (tenant_id, idempotency_key) DO UPDATE SET claimed_at = excluded.claimed_at
      WHERE state = 'running' AND claimed_at <= ?`);
    this.stateStmt = db.prepare(`SELECT state FROM ${table} WHERE tenant_id = ? AND idempotency_key = ?`);
    this.finishStmt = db.prepare(`UPDATE ${table} SET state = ?, finished_at = ? WHERE tenant_id = ? AND idempotency_key = ?`);
    this.releaseStmt = db.prepare(`DELETE FROM ${table} WHERE tenant_id = ? AND idempotency_key = ? AND state = 'running'`);
  }

  claim(tenantId: string, key: string, now: number): JobClaim {
    if (this.claimStmt.run(tenantId, key, now, now - this.leaseMs).changes === 1) return "claimed";
    const row = this.stateStmt.get(tenantId, key) as { state: JobClaim } | undefined;
    return row?.state ?? "running";
  }

  finish(tenantId: string, key: string, outcome: "done" | "denied", now: number): void {
    this.finishStmt.run(outcome, now, tenantId, key);
  }

  release(tenantId: string, key: string): void {
    this.releaseStmt.run(tenantId, key);
  }
}
