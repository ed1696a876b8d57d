import { createHash } from "node:crypto";
import Database from "better-sqlite3";

/**
 * A digest per table of a store file, rows sorted, leaving out the sidecar's
 * own decision log: two replicated sidecars that agree have equal digests.
 */
export function storeDigest(dbPath: string): Record<string, string> {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'decision_log' ORDER BY name").pluck().all() as string[];
    return Object.fromEntries(tables.map((table) => {
      const rows = (db.prepare(`SELECT * FROM "${table}"`).all() as unknown[]).map((row) => JSON.stringify(row)).sort();
      return [table, createHash("sha256").update(rows.join("\n")).digest("hex")];
    }));
  } finally {
    db.close();
  }
}
