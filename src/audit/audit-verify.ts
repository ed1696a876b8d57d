import type { Db } from "../store/database.js";
import { AUDIT_CHAIN_NAMES, AUDIT_CHAINS, chainHash, chainValues, type AuditChainName } from "./audit-chain.js";
import type { ChainPoint, Checkpoint } from "./audit-checkpoint.js";

export interface ChainReport {
  chain: AuditChainName;
  /** Rows the chain covers and verify checked. */
  verified: number;
  /** Rows written before migration 9, which carry no hash (the unverifiable prefix). */
  unchained: number;
  /** The last row: where a checkpoint taken now would point. */
  head: ChainPoint | null;
  /** The first problem, naming the first bad record; null when the chain holds. */
  problem: string | null;
}

/**
 * Walks one chain in rowid order and recomputes every hash. The first row
 * whose stored hash differs is named with what most likely happened to it:
 * a rowid gap before it means rows were deleted; a hash that matches the row
 * two back means the row before it was inserted; otherwise it (or a row
 * moved into its place) was changed. With a checkpoint, the row it commits
 * to must still be there with the same hash: that finds a truncated tail,
 * and a chain rewritten from scratch.
 */
export function verifyChain(db: Db, chain: AuditChainName, checkpoint?: ChainPoint): ChainReport {
  const columns = AUDIT_CHAINS[chain].join(", ");
  const rows = db.prepare(`SELECT rowid AS row_id, ${columns}, chain_hash FROM ${chain} ORDER BY rowid`).iterate() as IterableIterator<Record<string, unknown>>;
  const report: ChainReport = { chain, verified: 0, unchained: 0, head: null, problem: null };
  let previous = "";
  let beforePrevious: string | null = null;
  let previousRowId: number | null = null;
  let checkpointSeen = false;
  for (const row of rows) {
    const rowId = row.row_id as number;
    const stored = row.chain_hash as string | null;
    const name = describeRow(chain, row);
    if (stored === null) {
      if (report.verified === 0) {
        report.unchained++;
        previousRowId = rowId;
        continue;
      }
      report.problem = `${name} has no hash although rows before it do: the row was replaced, or its hash removed`;
      break;
    }
    if (chainHash(previous, chainValues(chain, row)) !== stored) {
      report.problem = `${name} does not match the chain: ${diagnose(chain, row, rowId, previousRowId, beforePrevious)}`;
      break;
    }
    if (checkpoint && rowId === checkpoint.rowId) {
      checkpointSeen = true;
      if (stored !== checkpoint.hash) {
        report.problem = `${name} is not the record the checkpoint commits to (hash ${short(checkpoint.hash)}): the chain was rewritten up to it`;
        break;
      }
    }
    beforePrevious = previous;
    previous = stored;
    previousRowId = rowId;
    report.verified++;
    report.head = { rowId, hash: stored, records: report.verified };
  }
  if (!report.problem && checkpoint && !checkpointSeen && checkpoint.rowId > 0) {
    report.problem = `the checkpoint commits to ${chain} rowid ${checkpoint.rowId} (hash ${short(checkpoint.hash)}), which is gone: the chain ends at ${
      report.head ? `rowid ${report.head.rowId}` : "no record"
    }, so its tail was truncated (or the rows were deleted and rewritten)`;
  }
  return report;
}

/** Every chain of the store, against a checkpoint's points when one is given. */
export function verifyAudit(db: Db, checkpoint?: Checkpoint): ChainReport[] {
  return AUDIT_CHAIN_NAMES.map((chain) => verifyChain(db, chain, checkpoint?.chains[chain]));
}

function diagnose(chain: AuditChainName, row: Record<string, unknown>, rowId: number, previousRowId: number | null, beforePrevious: string | null): string {
  if (previousRowId !== null && rowId !== previousRowId + 1) return `rows ${previousRowId + 1}..${rowId - 1} before it were deleted`;
  if (beforePrevious !== null && chainHash(beforePrevious, chainValues(chain, row)) === row.chain_hash) {
    return `the record before it (rowid ${previousRowId}) was inserted`;
  }
  return "its contents were changed, or records were moved or inserted here";
}

function describeRow(chain: AuditChainName, row: Record<string, unknown>): string {
  return chain === "decision_log" ? `decision_log rowid ${String(row.row_id)} (decision ${String(row.decision_id)})` : `admin_audit id ${String(row.row_id)} (${String(row.action)} by ${String(row.actor)})`;
}

const short = (hash: string) => hash.slice(0, 16);
