import Database from "better-sqlite3";
import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { UsageError } from "../errors.js";
import { applyMigrations } from "./migrations.js";
import { WRITE_LOCK_WAIT_MS } from "./write-lock-backoff.js";

export type Db = Database.Database;

/**
 * Opens (creating if needed) the SQLite store and brings its schema up to
 * date. WAL lets readers in other processes proceed while one writes;
 * busy_timeout makes concurrent writers queue briefly instead of failing. The file
 * holds memberships, key hashes and audit records, so it is made 0600 (like
 * the token files) before SQLite opens it; SQLite gives its -wal and -shm
 * files the database file's mode.
 */
export function openDatabase(path: string): Db {
  let db: Db;
  try {
    if (path !== ":memory:") {
      mkdirSync(dirname(path), { recursive: true });
      closeSync(openSync(path, "a", 0o600));
      chmodSync(path, 0o600); // a file an older version created 0644
    }
    db = new Database(path);
  } catch (error) {
    // A wrong path is the operator's to fix: name it, without a stack trace.
    throw new UsageError(`cannot open the database ${path} (BULKHEAD_DB / --db): ${(error as Error).message}`);
  }
  db.pragma("journal_mode = WAL");
  // FULL: in WAL mode every commit is fsynced before it returns, so a write
  // acknowledged to its caller (a Stripe webhook answered 200, which Stripe
  // never sends again; a Consume; an admin write) survives a power loss. At
  // NORMAL the last commits before one could vanish. It costs about 0.1 ms
  // per commit here (ADR 72, `npm run bench:consume`); the decision log's
  // table writes are batched, one commit per 100 ms.
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  // Migrations (once, at start) may wait for another process's lock; after
  // them a write waits at most WRITE_LOCK_WAIT_MS, because the wait blocks
  // the event loop (WriteLockBackoff refuses writes while the lock stays).
  db.pragma("busy_timeout = 5000");
  applyMigrations(db);
  db.pragma(`busy_timeout = ${WRITE_LOCK_WAIT_MS}`);
  return db;
}

/**
 * `PRAGMA quick_check` once at start: a sidecar restarted on a file with a
 * corrupt page used to report ready and fail (or answer from garbage) later.
 * It reads every page, so it costs in proportion to the file (ADR 29 has
 * figures); a failure is the operator's to fix, so it is a UsageError naming
 * the file and the first problems SQLite found.
 */
export function requireIntact(db: Db): void {
  let problems: string[];
  try {
    problems = (db.pragma("quick_check(5)") as Record<string, unknown>[]).map((row) => String(Object.values(row)[0]));
  } catch (error) {
    problems = [(error as Error).message];
  }
  if (problems.length === 1 && problems[0] === "ok") return;
  throw new UsageError(
    `the database ${db.name} failed its integrity check (${problems.join("; ")}); restore it from a backup (or try \`sqlite3 ${db.name} .recover\`) before starting`,
  );
}
