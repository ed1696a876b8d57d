import type { Db } from "../store/database.js";
import { DECISION_COLUMNS, decisionView } from "./decision-query.js";

export interface ExportRange {
  tenantId: string;
  /** Inclusive lower bound, ms since the epoch. */
  since?: number;
  /** Exclusive upper bound, ms since the epoch. */
  until?: number;
}

/**
 * One tenant's audit records as JSON lines, oldest first: its decisions
 * (rows whose principal tenant is the tenant; a member's attempt on another
 * tenant's resource is the member's tenant's record, never the other's) and
 * the operator actions on it. Every line is selected by `tenant_id = ?` in
 * SQL, so another tenant's record cannot reach the output, however the rows
 * interleave. Each line carries its chain hash, so a customer holding an
 * export and a later checkpoint can match the two.
 */
export function* exportTenantAudit(db: Db, range: ExportRange): Generator<string> {
  const since = range.since ?? 0;
  const until = range.until ?? Number.MAX_SAFE_INTEGER;
  const decisions = db
    .prepare(`SELECT ${DECISION_COLUMNS}, chain_hash FROM decision_log WHERE tenant_id = ? AND at >= ? AND at < ? ORDER BY at, rowid`)
    .iterate(range.tenantId, since, until) as IterableIterator<Record<string, unknown>>;
  for (const row of decisions) yield JSON.stringify({ kind: "decision", ...decisionView(row) });
  const actions = db
    .prepare(`SELECT id, at, actor, object, action, reason, source, result, chain_hash FROM admin_audit WHERE tenant_id = ? AND at >= ? AND at < ? ORDER BY at, id`)
    .iterate(range.tenantId, since, until) as IterableIterator<Record<string, unknown>>;
  for (const row of actions) yield JSON.stringify({ kind: "admin_action", tenant_id: range.tenantId, ...row, at: new Date(row.at as number).toISOString() });
}
