import type { Db } from "../store/database.js";
import { AUDIT_CHAINS, ChainHead } from "./audit-chain.js";
import type { DecisionRecord } from "./decision-log.js";

/**
 * The decision_log table as the decision log writes it, on whichever
 * connection it is given: the serving thread's, or the decision-log worker's
 * own (ADR 91). The chain head is read inside each transaction, which holds
 * SQLite's write lock, so two connections (or processes) never extend the
 * same head.
 */
export class DecisionTable {
  private readonly insertRow;
  private readonly addDropped;

  constructor(private readonly db: Db) {
    const columns = AUDIT_CHAINS.decision_log;
    this.insertRow = db.prepare(
      `INSERT OR IGNORE INTO decision_log (${columns.join(", ")}, chain_hash) VALUES (${columns.map(() => "?").join(", ")}, ?)`,
    );
    this.addDropped = db.prepare(
      `INSERT INTO meta (key, value) VALUES ('decisions_dropped', ?) ON CONFLICT (key) DO UPDATE SET value = value + excluded.value`,
    );
  }

  /** One IMMEDIATE transaction: the records, and `dropped` added to meta `decisions_dropped`. Throws if it did not commit. */
  write(records: readonly DecisionRecord[], dropped: number): void {
    this.db.transaction(() => {
      const chain = new ChainHead(this.db, "decision_log");
      for (const r of records) this.insert(r, chain);
      if (dropped > 0) this.addDropped.run(dropped);
    }).immediate();
  }

  // Each inserted row extends the hash chain (ADR 66); a duplicate that
  // INSERT OR IGNORE skips (a journal imported twice) does not. The values
  // are bound in the chain's column order, the array the hash covers.
  private insert(r: DecisionRecord, chain: ChainHead): void {
    const values = decisionValues(r);
    const hash = chain.nextOf(values);
    values.push(hash);
    if (this.insertRow.run(values).changes > 0) chain.commit(hash);
  }
}

/** Parses journal text; a line that is not a record (half-written by a failed append) is counted, not fatal. */
export function parseJournal(text: string): { records: DecisionRecord[]; unreadable: number } {
  const records: DecisionRecord[] = [];
  let unreadable = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      const record = JSON.parse(line) as DecisionRecord;
      if (typeof record?.decisionId !== "string") throw new Error("not a record");
      records.push(record);
    } catch {
      unreadable++;
    }
  }
  return { records, unreadable };
}

/**
 * A record as the decision_log row stores it, in the chain's column order
 * (AUDIT_CHAINS.decision_log): the values its chain hash covers, as
 * chainValues() gives them from the row (a missing value is null).
 */
function decisionValues(r: DecisionRecord): (string | number | null)[] {
  return [
    r.decisionId ?? null, r.at ?? null, r.tenantId ?? null, r.actorId ?? null, r.actorType ?? null, r.action ?? null,
    r.resourceType ?? null, r.resourceId ?? null, r.resourceTenantId ?? null, r.allow ? 1 : 0, JSON.stringify(r.reasons) ?? null,
    r.policyRevision ?? null, r.storeRevision ?? null, r.requestId ?? null, r.source ?? null, impersonationColumn(r.impersonation),
  ];
}

/** "" when nobody impersonated, else the session's ids as JSON (staff_role and reason stay in admin_audit). */
function impersonationColumn(i: DecisionRecord["impersonation"]): string {
  return i ? JSON.stringify({ session_id: i.session_id, staff_id: i.staff_id, as_actor_id: i.as_actor_id }) : "";
}
