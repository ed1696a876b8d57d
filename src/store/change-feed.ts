import type { Db } from "./database.js";
import type { ChangeRecord } from "./revision-writer.js";

/** Reads the `changes` log for WatchChanges: after a revision, one tenant (plus global changes) or all. */
export class ChangeFeed {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = db.prepare<[number, string, string, number], { revision: number; tenant_id: string | null; kind: string }>(
      `SELECT revision, tenant_id, kind FROM changes
        WHERE revision > ? AND (? = '' OR tenant_id = ? OR tenant_id IS NULL)
        ORDER BY revision, tenant_id, kind LIMIT ?`,
    );
  }

  after(revision: number, tenantId = "", limit = 500): ChangeRecord[] {
    return this.stmt.all(revision, tenantId, tenantId, limit).map((r) => ({ revision: r.revision, tenantId: r.tenant_id, kind: r.kind }));
  }
}
