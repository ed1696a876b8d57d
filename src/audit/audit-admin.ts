import type { DirectoryStore } from "../directory/directory-store.js";
import { BulkheadError, invalidArgument } from "../errors.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { Db } from "../store/database.js";
import type { CommandRegistry } from "../store/store-command.js";
import { exportTenantAudit, type ExportRange } from "./audit-export.js";
import { adminCommand, commandActor, requireCapability, type AdminActor, type AuditedWriter } from "./audited-write.js";
import type { AdminAuditRecord } from "./admin-audit.js";

/** How many rows the Audit page shows of each list. */
export const AUDIT_PAGE_ROWS = 50;

/**
 * The audit as staff read it: a tenant's admin actions, the operator-wide
 * ones (scoped to no tenant: flags, plans, approvals, staff), and a tenant's
 * export, the same lines `bulkhead audit export` writes on the host.
 *
 * An export is a bulk copy of who did what in a tenant, so it is an audited
 * access (`audit.export`, with a reason) recorded before a line is read, and
 * it needs `audit.read` (ADR 89): the same data QueryDecisions pages through,
 * which a support agent may not see.
 */
export class AuditAdmin {
  private readonly kinds;

  constructor(
    private readonly deps: {
      db: Db;
      audited: AuditedWriter;
      directory: Pick<DirectoryStore, "tenantById">;
      /** Writes this process's buffered decisions first, so the export holds what was just answered. */
      flushDecisions: () => void;
      commands: CommandWriter;
      registry: CommandRegistry;
    },
  ) {
    this.kinds = {
      // An access, not a change: a command so that in replicated mode every sidecar has the row (like tenant.select).
      export: deps.registry.register(adminCommand("audit.export", (_tx, b: { tenantId: string; since: number | null; until: number | null }, by) =>
        deps.audited.recordAccess(by, { tenantId: b.tenantId, object: `audit:${b.tenantId}`, action: "audit.export" }))),
    };
  }

  tenantActions(tenantId: string, limit = AUDIT_PAGE_ROWS): AdminAuditRecord[] {
    this.requireTenant(tenantId);
    return this.deps.audited.recent(tenantId, limit);
  }

  operatorActions(limit = AUDIT_PAGE_ROWS): AdminAuditRecord[] {
    return this.deps.audited.recentGlobal(limit);
  }

  /**
   * One tenant's export as JSON lines, oldest first. Read into memory in one
   * go: a better-sqlite3 iterator left open across an await would make every
   * other write on the connection fail while the download streams.
   */
  async exportTenant(range: ExportRange, by: AdminActor): Promise<string[]> {
    requireCapability(by.caller, "audit.read", "export a tenant's audit");
    this.requireTenant(range.tenantId);
    if (by.reason.trim() === "") throw invalidArgument("reason", "is required for every audited access");
    const body = { tenantId: range.tenantId, since: range.since ?? null, until: range.until ?? null };
    await this.deps.commands.run(this.kinds.export, { ...body, by: commandActor(by) });
    this.deps.flushDecisions();
    return [...exportTenantAudit(this.deps.db, range)];
  }

  private requireTenant(tenantId: string): void {
    if (!this.deps.directory.tenantById(tenantId)) throw new BulkheadError("TENANT_NOT_FOUND", `tenant_id: no tenant '${tenantId}'`, "tenant_id");
  }
}
