import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";

export interface AdminAuditEntry {
  actor: string;
  tenantId: string | null;
  object: string;
  action: string;
  reason: string;
  source: string;
  result: string;
}

/** Operator actions, written in the same transaction as the change they describe. */
export class AdminAudit {
  private readonly insert;

  constructor(db: Db) {
    this.insert = db.prepare(
      `INSERT INTO admin_audit (at, actor, tenant_id, object, action, reason, source, result)
       VALUES (@at, @actor, @tenantId, @object, @action, @reason, @source, @result)`,
    );
  }

  record(tx: WriteScope, entry: AdminAuditEntry): void {
    this.insert.run({ ...entry, at: tx.now });
  }
}
