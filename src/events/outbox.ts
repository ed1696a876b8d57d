import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";

export interface OutboxEvent {
  id: number;
  tenantId: string;
  kind: string;
  payload: Record<string, unknown>;
  createdAt: number;
  revision: number;
}

/**
 * Events for hosts (usage_limit_warning, later billing notices), appended in
 * the same transaction as the change that caused them, so an event exists if
 * and only if its cause committed. Hosts read them in id order (WatchEvents).
 */
export class Outbox {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = {
      append: db.prepare(
        "INSERT INTO outbox (tenant_id, kind, payload, created_at, revision) VALUES (?, ?, ?, ?, ?)",
      ),
      after: db.prepare<[number, string, string, number], { id: number; tenant_id: string; kind: string; payload: string; created_at: number; revision: number }>(
        `SELECT id, tenant_id, kind, payload, created_at, revision FROM outbox
          WHERE id > ? AND (? = '' OR tenant_id = ?) ORDER BY id LIMIT ?`,
      ),
    };
  }

  append(tx: WriteScope, tenantId: string, kind: string, payload: Record<string, unknown>): void {
    this.stmt.append.run(tenantId, kind, JSON.stringify(payload), tx.now, tx.revision);
  }

  /** Events after `afterId`, oldest first; `tenantId` "" means every tenant. */
  after(afterId: number, tenantId = "", limit = 500): OutboxEvent[] {
    return this.stmt.after.all(afterId, tenantId, tenantId, limit).map((r) => ({
      id: r.id,
      tenantId: r.tenant_id,
      kind: r.kind,
      payload: JSON.parse(r.payload) as Record<string, unknown>,
      createdAt: r.created_at,
      revision: r.revision,
    }));
  }
}
