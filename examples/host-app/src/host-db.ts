import Database from "better-sqlite3";
import { tenantTable } from "bulkhead/client";

// Row types are `type` aliases, not interfaces: tenantTable wants an index signature.
// The example host's OWN database (not Bulkhead's): every business table
// carries tenant_id, and every route reaches it through a scoped repository.
export type Project = { id: string; tenant_id: string; name: string };
export type Report = { id: string; tenant_id: string; project_id: string; title: string };
export type StoredFile = { id: string; tenant_id: string; report_id: string | null; object_key: string; name: string };

export const tables = {
  projects: tenantTable<Project>({ tenantColumn: "tenant_id", idColumn: "id", columns: ["id", "tenant_id", "name"] }),
  reports: tenantTable<Report>({ tenantColumn: "tenant_id", idColumn: "id", columns: ["id", "tenant_id", "project_id", "title"] }),
  files: tenantTable<StoredFile>({ tenantColumn: "tenant_id", idColumn: "id", columns: ["id", "tenant_id", "report_id", "object_key", "name"] }),
};

/** Demo rows for the demo sidecar's tenants (src/demo/demo-dataset.ts): two tenants, so there is someone to attack. */
const SEED = `
  INSERT INTO projects VALUES ('prj_acme_1', 'ten_acme', 'Acme roadmap'), ('prj_acme_2', 'ten_acme', 'Acme launch'),
                              ('prj_globex_1', 'ten_globex', 'Globex secrets');
  INSERT INTO reports VALUES ('rep_acme_1', 'ten_acme', 'prj_acme_1', 'Roadmap status'),
                             ('rep_globex_1', 'ten_globex', 'prj_globex_1', 'Globex revenue');
`;

/** Opens (and on first use creates and seeds) the host database. */
export function openHostDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.exec(`
    CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS reports (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, project_id TEXT NOT NULL, title TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, report_id TEXT, object_key TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
    -- The queue: at-least-once delivery, so a job may run more than once (runTenantJob makes that harmless).
    CREATE TABLE IF NOT EXISTS job_queue (id INTEGER PRIMARY KEY, envelope TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0);
  `);
  if ((db.prepare("SELECT count(*) FROM projects").pluck().get() as number) === 0) db.exec(SEED);
  return db;
}
