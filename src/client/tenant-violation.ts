import { TenantScopeError } from "./tenant-scope-error.js";
import type { TrustedTenantContext } from "./trusted-context.js";

/**
 * A row that came back for one tenant but names another: a forged or
 * corrupted row, a collation that matched what it should not, a scoping bug.
 * The helper that saw it reports it here, then throws.
 */
export interface TenantViolation {
  /** Always `tenant_row_mismatch`; a field so log queries can select on it. */
  event: "tenant_row_mismatch";
  /** The context's tenant. */
  tenantId: string;
  /** What the row's tenant column held instead. */
  foundTenantId: unknown;
  actorId: string;
  requestId: string;
  /** The table (or result of a query) the row came from. */
  table: string;
  /** `select`, `insert`, `update`, `delete` or `query`. */
  operation: string;
  /** The row's id, when known. */
  rowId?: unknown;
}

/** Where violations are reported; the default writes one JSON line to stderr. */
export type TenantViolationSink = (violation: TenantViolation) => void;

/** The default {@link TenantViolationSink}: one JSON line on stderr, for the host's log pipeline to alert on. */
export const logViolationToStderr: TenantViolationSink = (violation) => {
  process.stderr.write(`${JSON.stringify({ level: "error", ...violation })}\n`);
};

/** What a row check needs to know about where the rows came from. */
export interface RowCheck {
  context: TrustedTenantContext;
  tenantColumn: string;
  idColumn?: string;
  table: string;
  operation: string;
  sink: TenantViolationSink;
  /**
   * Skip rows whose tenant column is absent or null (a query result that did
   * not select it, the empty side of a LEFT JOIN). Repositories select the
   * column always and leave this off: for them a missing tenant is a stranger.
   */
  allowMissing?: boolean;
}

/**
 * Returns `rows` if every row's tenant column holds exactly the context's
 * tenant id (a strict string comparison, not the database's collation);
 * otherwise reports the first stranger and throws `TENANT_MISMATCH`.
 */
export function requireOwnRows<R>(rows: R[], check: RowCheck): R[] {
  for (const row of rows) {
    const found = (row as Record<string, unknown>)?.[check.tenantColumn];
    if (found === check.context.tenantId) continue;
    if (check.allowMissing && (found === undefined || found === null)) continue;
    const rowId = check.idColumn ? (row as Record<string, unknown>)?.[check.idColumn] : undefined;
    check.sink({
      event: "tenant_row_mismatch", tenantId: check.context.tenantId, foundTenantId: found, actorId: check.context.actorId,
      requestId: check.context.requestId, table: check.table, operation: check.operation, ...(rowId === undefined ? {} : { rowId }),
    });
    throw new TenantScopeError("TENANT_MISMATCH", `${check.table}: a ${check.operation} returned a row of tenant ${JSON.stringify(found)} to tenant ${check.context.tenantId}`, check.tenantColumn);
  }
  return rows;
}
