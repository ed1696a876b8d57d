import Database from "better-sqlite3";
import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { UsageError } from "../errors.js";
import { applyMigrations } from "./migrations.js";

export type Db = Database.Database;

/**
 * Opens (creating if needed) the SQLite store and brings its schema up to
 * date. WAL lets readers in other processes proceed while one writes;
 * busy_timeout makes concurrent writers queue instead of failing. The file
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
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  applyMigrations(db);
  return db;
}
