import type { Db } from "../store/database.js";

/** One decision as the audit log keeps it. No secrets: no API keys, no attributes. */
export interface DecisionRecord {
  decisionId: string;
  at: number;
  tenantId: string;
  actorId: string;
  actorType: string;
  action: string;
  resourceType: string;
  resourceId: string;
  resourceTenantId: string;
  allow: boolean;
  reasons: string[];
  policyRevision: string;
  storeRevision: number;
  requestId: string;
  source: string;
  /** The session, staff member and impersonated member when staff acted through an impersonation. */
  impersonation: { session_id: string; staff_id: string; as_actor_id: string } | null;
}

export interface DecisionLogStats {
  buffered: number;
  written: number;
  dropped: number;
  flushFailures: number;
}

export interface DecisionLogOptions {
  /** Most records held before new ones are dropped (and counted). */
  maxBuffered?: number;
  flushIntervalMs?: number;
  log?: (message: string) => void;
}

/**
 * Decision log with a bounded buffer: record() only pushes onto an array, so a
 * decision never waits on disk and never fails because of the log. A timer
 * swaps the buffer out and writes it in one transaction. Records that do not
 * fit, or whose batch fails to write, are counted as dropped, never silently lost.
 */
export class DecisionLog {
  private buffer: DecisionRecord[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly insertBatch;
  private readonly statsValue: DecisionLogStats = { buffered: 0, written: 0, dropped: 0, flushFailures: 0 };

  constructor(
    db: Db,
    private readonly options: DecisionLogOptions = {},
  ) {
    const insert = db.prepare(
      `INSERT INTO decision_log (decision_id, at, tenant_id, actor_id, actor_type, action, resource_type, resource_id,
         resource_tenant_id, allow, reasons, policy_revision, store_revision, request_id, source, impersonation)
       VALUES (@decisionId, @at, @tenantId, @actorId, @actorType, @action, @resourceType, @resourceId,
         @resourceTenantId, @allow, @reasons, @policyRevision, @storeRevision, @requestId, @source, @impersonation)`,
    );
    this.insertBatch = db.transaction((records: DecisionRecord[]) => {
      for (const r of records) insert.run({ ...r, allow: r.allow ? 1 : 0, reasons: JSON.stringify(r.reasons), impersonation: impersonationColumn(r.impersonation) });
    });
  }

  record(record: DecisionRecord): void {
    if (this.buffer.length >= (this.options.maxBuffered ?? 10_000)) {
      this.statsValue.dropped++;
      return;
    }
    this.buffer.push(record);
    this.timer ??= setTimeout(() => this.flush(), this.options.flushIntervalMs ?? 100);
  }

  /** Writes everything buffered now. Called by the timer and on shutdown. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length === 0) return;
    try {
      this.insertBatch(batch);
      this.statsValue.written += batch.length;
    } catch (error) {
      this.statsValue.flushFailures++;
      this.statsValue.dropped += batch.length;
      this.options.log?.(`decision log: dropped ${batch.length} records: ${(error as Error).message}`);
    }
  }

  get stats(): Readonly<DecisionLogStats> {
    return { ...this.statsValue, buffered: this.buffer.length };
  }
}

/** "" when nobody impersonated, else the session's ids as JSON (staff_role and reason stay in admin_audit). */
function impersonationColumn(i: DecisionRecord["impersonation"]): string {
  return i ? JSON.stringify({ session_id: i.session_id, staff_id: i.staff_id, as_actor_id: i.as_actor_id }) : "";
}
