import type { AdminAudit } from "../audit/admin-audit.js";
import { checkText } from "../directory/admin-input.js";
import { invalidArgument } from "../errors.js";
import type { Logger } from "../log/logger.js";
import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { Approval, BreakGlassHooks } from "./approvals.js";
import type { AdminCapability } from "./staff-roles.js";

// Break-glass (issue 20, ADR 54): one staff member alone opens an emergency
// approval for one exact change. Its trail is its own admin_audit action
// family, `break_glass.open`, `break_glass.used` and `break_glass.expired`,
// each a row in the hash-chained admin_audit, a warn log line and a count
// in bulkhead_break_glass_total.

/** How long a grant lasts unless asked for less; also the most it may last. */
export const BREAK_GLASS_TTL_DEFAULT_SECONDS = 15 * 60;
export const BREAK_GLASS_TTL_MAX_SECONDS = 15 * 60;
export const BREAK_GLASS_JUSTIFICATION_MIN = 10;
export const BREAK_GLASS_JUSTIFICATION_MAX = 500;

export const BREAK_GLASS_EVENTS = ["open", "used", "expired"] as const;
export type BreakGlassEvent = (typeof BREAK_GLASS_EVENTS)[number];

/** A grant for a write its opener may not make is refused at once. */
export { APPROVABLE_VERB_CAPABILITY as BREAK_GLASS_VERB_CAPABILITY } from "./approvals.js";

/** 1..15 minutes; 0 (unset) is the default. */
export function breakGlassTtlSeconds(ttlSeconds: number): number {
  if (ttlSeconds === 0) return BREAK_GLASS_TTL_DEFAULT_SECONDS;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > BREAK_GLASS_TTL_MAX_SECONDS) {
    throw invalidArgument("ttl_seconds", `must be from 1 to ${BREAK_GLASS_TTL_MAX_SECONDS} (15 minutes); 0 means the default, ${BREAK_GLASS_TTL_DEFAULT_SECONDS}`);
  }
  return ttlSeconds;
}

/** Mandatory free text: what is broken and why a second person cannot be waited for. */
export function validateJustification(raw: string | undefined): string {
  const value = (raw ?? "").trim();
  if (value.length < BREAK_GLASS_JUSTIFICATION_MIN) {
    throw invalidArgument("justification", `is required for break-glass: at least ${BREAK_GLASS_JUSTIFICATION_MIN} characters on what is broken and why no second person can approve`);
  }
  checkText(value, "justification", BREAK_GLASS_JUSTIFICATION_MAX);
  return value;
}

/** open while it can still be used; used; or expired (by time, whether or not its expiry row is written yet). */
export function breakGlassStatus(g: Approval, now: number): "open" | "used" | "expired" {
  return g.usedAt !== null ? "used" : g.expiredAt !== null || g.expiresAt <= now ? "expired" : "open";
}

/** One row of the break-glass trail as the audit holds it. */
export interface BreakGlassAuditRow {
  at: number;
  actor: string;
  object: string;
  action: string;
  reason: string;
  source: string;
}

/**
 * The trail's side effects, shared by the use cases: the audit row inside
 * the write's transaction and the warn line. The metric is read from the
 * audit itself at scrape time (rows by action), so it counts exactly what
 * was committed and is the same on every replicated sidecar.
 */
export class BreakGlassTrail {
  private readonly rows;
  private readonly counted;

  constructor(
    db: Db,
    private readonly audit: AdminAudit,
    private readonly logger: Pick<Logger, "warn">,
  ) {
    this.rows = db.prepare<[number], BreakGlassAuditRow>(
      "SELECT at, actor, object, action, reason, source FROM admin_audit WHERE action LIKE 'break\\_glass.%' ESCAPE '\\' ORDER BY id DESC LIMIT ?",
    );
    this.counted = db.prepare<[], { action: string; n: number }>(
      "SELECT action, COUNT(*) AS n FROM admin_audit WHERE action LIKE 'break\\_glass.%' ESCAPE '\\' GROUP BY action",
    );
  }

  /** Appends a `break_glass.<event>` audit row in `tx` (the open row is the open command's own audited write). */
  record(tx: WriteScope, event: Exclude<BreakGlassEvent, "open">, grant: Approval, actor: string, source: string): void {
    this.audit.record(tx, { actor, tenantId: null, object: `break_glass:${grant.id}`, action: `break_glass.${event}`, reason: grant.reason, source, result: "ok" });
    this.warn(event, grant);
  }

  warn(event: BreakGlassEvent, grant: Approval): void {
    this.logger.warn(
      { breakGlass: { event, grantId: grant.id, action: grant.action, openedBy: grant.requestedBy, reason: grant.reason, justification: grant.justification, expiresAt: new Date(grant.expiresAt).toISOString() } },
      `break-glass ${event}: ${grant.requestedBy} ${event === "open" ? "opened" : event === "used" ? "used" : "let expire"} ${grant.id} for ${grant.action}`,
    );
  }

  /** The trail's audit rows on their own, newest first. */
  auditRows(limit: number): BreakGlassAuditRow[] {
    return this.rows.all(limit);
  }

  /** Committed trail rows per event, for bulkhead_break_glass_total. */
  counts(): [{ event: string }, number][] {
    const found = new Map(this.counted.all().map((r) => [r.action.slice("break_glass.".length), r.n]));
    return BREAK_GLASS_EVENTS.map((event) => [{ event }, found.get(event) ?? 0]);
  }

  /** The hooks Approvals calls when a grant is spent. */
  hooks(stillAllowed: (actor: string) => boolean): BreakGlassHooks {
    return { stillAllowed, used: (tx, grant) => this.record(tx, "used", grant, grant.requestedBy, "break_glass") };
  }
}
