import { invalidArgument } from "../errors.js";
import type { Db } from "../store/database.js";

/** One decision-log row as the query, the export and the CLI show it. */
export interface DecisionView {
  decision_id: string;
  at: string;
  tenant_id: string;
  actor_id: string;
  actor_type: string;
  action: string;
  resource_type: string;
  resource_id: string;
  resource_tenant_id: string;
  allow: boolean;
  reasons: string[];
  policy_revision: string;
  store_revision: number;
  request_id: string;
  source: string;
  impersonation: unknown;
}

export const DECISION_COLUMNS = `decision_id, at, tenant_id, actor_id, actor_type, action, resource_type, resource_id, resource_tenant_id, allow, reasons,
  policy_revision, store_revision, request_id, source, impersonation`;

/** A decision_log row (selected with DECISION_COLUMNS) in the shape callers see. */
export function decisionView(row: Record<string, unknown>): DecisionView {
  return {
    ...(row as unknown as DecisionView),
    at: new Date(row.at as number).toISOString(),
    allow: row.allow === 1,
    reasons: JSON.parse(row.reasons as string) as string[],
    impersonation: row.impersonation ? (JSON.parse(row.impersonation as string) as unknown) : null,
  };
}

export interface DecisionFilter {
  /** Required for AdminService (one tenant per query); the CLI on the host may leave it out. */
  tenantId?: string | undefined;
  actorId?: string | undefined;
  action?: string | undefined;
  decisionId?: string | undefined;
  /** A reason code the decision carries, e.g. wrong_tenant. */
  reason?: string | undefined;
  result?: "allow" | "deny" | undefined;
  /** Inclusive, ms since the epoch. */
  since?: number | undefined;
  /** Exclusive, ms since the epoch. */
  until?: number | undefined;
}

export const QUERY_PAGE_DEFAULT = 50;
export const QUERY_PAGE_MAX = 500;

export interface DecisionPage {
  decisions: DecisionView[];
  /** Pass back as `pageToken` for the next (older) page; "" when this was the last. */
  nextPageToken: string;
}

/**
 * The decision log, newest first, filtered, in pages. Paging is by position
 * (the last row's rowid), not offset, so rows appended while a caller pages
 * never shift a page or repeat a row. The token carries only that position:
 * a token taken in one tenant's query and replayed in another's still
 * selects by `tenant_id = ?`, so it reveals nothing of the first.
 */
export function queryDecisions(db: Db, filter: DecisionFilter, page: { size?: number; token?: string } = {}): DecisionPage {
  const size = page.size || QUERY_PAGE_DEFAULT;
  if (!Number.isInteger(size) || size < 1 || size > QUERY_PAGE_MAX) throw invalidArgument("page_size", `must be from 1 to ${QUERY_PAGE_MAX} (0 = ${QUERY_PAGE_DEFAULT})`);
  const before = page.token ? decodePageToken(page.token) : Number.MAX_SAFE_INTEGER;
  const { where, params } = whereClause(filter);
  const rows = db
    .prepare(`SELECT rowid AS position, ${DECISION_COLUMNS} FROM decision_log WHERE rowid < ? ${where} ORDER BY rowid DESC LIMIT ?`)
    .all(before, ...params, size + 1) as Record<string, unknown>[];
  const more = rows.length > size;
  const shown = rows.slice(0, size);
  return {
    decisions: shown.map(({ position: _, ...row }) => decisionView(row)),
    nextPageToken: more ? encodePageToken(shown.at(-1)!.position as number) : "",
  };
}

/** Rows appended after `position` (a rowid), oldest first, for `decisions tail --follow`. */
export function decisionsAfter(db: Db, position: number, filter: DecisionFilter, limit = 1000): { decisions: DecisionView[]; position: number } {
  const { where, params } = whereClause(filter);
  const rows = db
    .prepare(`SELECT rowid AS position, ${DECISION_COLUMNS} FROM decision_log WHERE rowid > ? ${where} ORDER BY rowid LIMIT ?`)
    .all(position, ...params, limit) as Record<string, unknown>[];
  return { decisions: rows.map(({ position: _, ...row }) => decisionView(row)), position: rows.length > 0 ? (rows.at(-1)!.position as number) : position };
}

function whereClause(filter: DecisionFilter): { where: string; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const equal = (column: string, value: string | undefined) => {
    if (value === undefined || value === "") return;
    clauses.push(`${column} = ?`);
    params.push(value);
  };
  equal("tenant_id", filter.tenantId);
  equal("actor_id", filter.actorId);
  equal("action", filter.action);
  equal("decision_id", filter.decisionId);
  if (filter.reason) {
    clauses.push("EXISTS (SELECT 1 FROM json_each(reasons) WHERE value = ?)");
    params.push(filter.reason);
  }
  if (filter.result) {
    clauses.push("allow = ?");
    params.push(filter.result === "allow" ? 1 : 0);
  }
  if (filter.since !== undefined) {
    clauses.push("at >= ?");
    params.push(filter.since);
  }
  if (filter.until !== undefined) {
    clauses.push("at < ?");
    params.push(filter.until);
  }
  return { where: clauses.map((c) => `AND ${c}`).join(" "), params };
}

const TOKEN_PREFIX = "dl1.";

function encodePageToken(position: number): string {
  return TOKEN_PREFIX + Buffer.from(String(position)).toString("base64url");
}

function decodePageToken(token: string): number {
  const position = token.startsWith(TOKEN_PREFIX) ? Number(Buffer.from(token.slice(TOKEN_PREFIX.length), "base64url").toString()) : Number.NaN;
  if (!Number.isSafeInteger(position) || position < 1) throw invalidArgument("page_token", "is not a token this query returned");
  return position;
}
