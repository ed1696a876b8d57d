import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A host application's own SQLite file (not Bulkhead's): projects owned by tenants, and an effects table jobs write to. */
export interface HostDb {
  db: Database.Database;
  path: string;
  project(id: string): { id: string; tenant_id: string; name: string } | undefined;
  close(): void;
}

export function openHostDb(): HostDb {
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-host-"));
  const path = join(dir, "host.db");
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.exec(`
    CREATE TABLE projects (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE exports (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, project_id TEXT NOT NULL, by_actor TEXT NOT NULL);
    INSERT INTO projects VALUES ('prj_acme_1', 'ten_acme', 'Acme roadmap'), ('prj_globex_1', 'ten_globex', 'Globex secrets');
  `);
  const byId = db.prepare<[string], { id: string; tenant_id: string; name: string }>("SELECT id, tenant_id, name FROM projects WHERE id = ?");
  return {
    db,
    path,
    project: (id) => byId.get(id),
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
