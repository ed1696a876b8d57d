import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import { ChainHead } from "./audit-chain.js";

export interface AdminAuditEntry {
  actor: string;
  tenantId: string | null;
  object: string;
  action: string;
  reason: string;
  source: string;
  result: string;
}

/** One admin_audit row as read back. */
export interface AdminAuditRecord extends AdminAuditEntry {
  at: number;
}

/** Operator actions, written in the same transaction as the change they describe, each extending the audit hash chain (ADR 66). */
export class AdminAudit {
  private readonly insert;
  private readonly latest;
  private readonly latestGlobal;

  constructor(private readonly db: Db) {
    this.insert = db.prepare(
      `INSERT INTO admin_audit (at, actor, tenant_id, object, action, reason, source, result, chain_hash)
       VALUES (@at, @actor, @tenant_id, @object, @action, @reason, @source, @result, @chain_hash)`,
    );
    this.latest = db.prepare(
      `SELECT at, actor, tenant_id AS tenantId, object, action, reason, source, result FROM admin_audit WHERE tenant_id = ? ORDER BY id DESC LIMIT ?`,
    );
    this.latestGlobal = db.prepare(
      `SELECT at, actor, tenant_id AS tenantId, object, action, reason, source, result FROM admin_audit WHERE tenant_id IS NULL ORDER BY id DESC LIMIT ?`,
    );
  }

  recent(tenantId: string, limit: number): AdminAuditRecord[] {
    return this.latest.all(tenantId, limit) as AdminAuditRecord[];
  }

  /** The operator's own actions, scoped to no tenant (flags, plans, approvals, staff), newest first. */
  recentGlobal(limit: number): AdminAuditRecord[] {
    return this.latestGlobal.all(limit) as AdminAuditRecord[];
  }

  record(tx: WriteScope, entry: AdminAuditEntry): void {
    const row = { at: tx.now, actor: entry.actor, tenant_id: entry.tenantId, object: entry.object, action: entry.action, reason: entry.reason, source: entry.source, result: entry.result };
    this.insert.run({ ...row, chain_hash: new ChainHead(this.db, "admin_audit").next(row) });
  }
}
