import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BulkheadClient, type TrustedTenantContext } from "../../src/client/index.js";
import { TEST_ADMIN_TOKEN, startSidecar, type SidecarOptions, type TestSidecar } from "./sidecar.js";

/**
 * A real sidecar (demo dataset) and a BulkheadClient over gRPC: the only way
 * the tenant-scoped helpers accept a context is one resolved like this.
 */
export interface ContextSource {
  sidecar: TestSidecar;
  client: BulkheadClient;
  /** The trusted context of `actorId` in `tenantId`, resolved by the sidecar. */
  contextOf(tenantId: string, actorId: string): Promise<TrustedTenantContext>;
  close(): Promise<void>;
}

export async function startContextSource(options: SidecarOptions = {}): Promise<ContextSource> {
  const sidecar = await startSidecar(options);
  const client = new BulkheadClient({ address: sidecar.grpcAddress, adminToken: TEST_ADMIN_TOKEN, operator: "usr_ops", deadlineMs: 10_000 });
  return {
    sidecar,
    client,
    contextOf: (tenantId, actorId) => client.resolveContext({ principal: { tenantId, actorId, requestId: `req_${tenantId}_${actorId}` } }),
    async close() {
      await client.close();
      await sidecar.close();
    },
  };
}

/**
 * The host application's own SQLite file (not Bulkhead's): a `projects` table
 * whose tenant column compares without case, the way a careless schema
 * might declare it, so a row forged with `TEN_ACME` matches `ten_acme` in
 * SQL and only the repository's own row check can catch it.
 */
export function hostDatabase(): { db: Database.Database; file: string; dir: string; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-host-"));
  const file = join(dir, "host.db");
  const db = new Database(file);
  db.exec(`
    CREATE TABLE projects (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open');
    CREATE TABLE reports (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, project_id TEXT NOT NULL, title TEXT NOT NULL);
    CREATE TABLE plans (code TEXT PRIMARY KEY, name TEXT NOT NULL);
  `);
  return {
    db,
    file,
    dir,
    close() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A row as it is in the file, read on a second connection that no repository wraps. */
export function rawRow(file: string, table: string, id: string): Record<string, unknown> | undefined {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT * FROM ${table} WHERE id = ?`).get(id) as Record<string, unknown> | undefined;
  } finally {
    db.close();
  }
}
