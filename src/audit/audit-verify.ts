import type { Db } from "../store/database.js";
import { AUDIT_CHAIN_NAMES, AUDIT_CHAINS, chainHash, chainValues, type AuditChainName } from "./audit-chain.js";
import type { ChainPoint, Checkpoint } from "./audit-checkpoint.js";
import { readAnchor, type ChainAnchor } from "./audit-anchor.js";

export interface ChainReport {
  chain: AuditChainName;
  /** Rows the chain covers and verify checked. */
  verified: number;
  /** Rows written before migration 9, which carry no hash (the unverifiable prefix). */
  unchained: number;
  /** The last row: where a checkpoint taken now would point. */
  head: ChainPoint | null;
  /** Where retention pruned the chain up to (ADR 57); verify starts from it. */
  anchor: ChainAnchor | null;
  /** What verify could not check but is not tampering (a checkpoint older than the anchor). */
  notes: string[];
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
 *
 * A chain retention pruned starts at its anchor (ADR 57): the first kept row
 * must follow the anchor's rowid and chain from its hash. Rowids start at 1
 * and are never reused, so a first row past 1 with no anchor is a deleted
 * prefix, and a first row that does not chain from the anchor means the
 * anchor or the row was changed.
 */
export function verifyChain(db: Db, chain: AuditChainName, checkpoint?: ChainPoint): ChainReport {
  const columns = AUDIT_CHAINS[chain].join(", ");
  const anchor = readAnchor(db, chain);
  const report: ChainReport = { chain, verified: 0, unchained: 0, head: anchor && { rowId: anchor.rowId, hash: anchor.hash, records: anchor.records }, anchor, notes: [], problem: null };
  let previous = anchor?.hash ?? "";
  let beforePrevious: string | null = null;
  let previousRowId: number | null = anchor?.rowId ?? null;
  let checkpointSeen = checkpoint !== undefined && anchor !== null && checkpointBeforeAnchor(report, checkpoint, anchor);
  if (report.problem) return report;
  const rows = db.prepare(`SELECT rowid AS row_id, ${columns}, chain_hash FROM ${chain} ORDER BY rowid`).iterate() as IterableIterator<Record<string, unknown>>;
  let first = true;
  for (const row of rows) {
    const rowId = row.row_id as number;
    const stored = row.chain_hash as string | null;
    const name = describeRow(chain, row);
    if (first) {
      first = false;
      report.problem = startProblem(name, rowId, anchor);
      if (report.problem) break;
    }
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
      report.problem = anchor && report.verified === 0 && rowId === anchor.rowId + 1
        ? `${name} does not chain from the retention anchor (rowid ${anchor.rowId}, hash ${short(anchor.hash)}): the anchor or the record was changed`
        : `${name} does not match the chain: ${diagnose(chain, row, rowId, previousRowId, beforePrevious)}`;
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
    report.head = { rowId, hash: stored, records: (anchor?.records ?? 0) + report.verified };
  }
  if (!report.problem && anchor && first) {
    report.problem = `${chain} has a retention anchor at rowid ${anchor.rowId} but no record after it; retention always keeps the newest record, so the rest were deleted`;
  }
  if (!report.problem && checkpoint && !checkpointSeen && checkpoint.rowId > 0) {
    report.problem = `the checkpoint commits to ${chain} rowid ${checkpoint.rowId} (hash ${short(checkpoint.hash)}), which is gone: the chain ends at ${
      report.head ? `rowid ${report.head.rowId}` : "no record"
    }, so its tail was truncated (or the rows were deleted and rewritten)`;
  }
  return report;
}

/** A problem with where the chain starts, before any hash is recomputed; null when the start is sound. */
function startProblem(name: string, rowId: number, anchor: ChainAnchor | null): string | null {
  if (anchor === null) return rowId > 1 ? `${name} is the first record, but rows 1..${rowId - 1} are gone and no retention anchor records a prune: they were deleted` : null;
  if (rowId <= anchor.rowId) return `${name} is at or before the retention anchor (rowid ${anchor.rowId}): a record was inserted into the pruned prefix, or the anchor was moved`;
  return null;
}

/**
 * A checkpoint at or before the anchor: its record was pruned. At the
 * anchor itself the hashes must agree; an older one cannot be checked (a
 * note, not tampering: take checkpoints more often than retention prunes).
 */
function checkpointBeforeAnchor(report: ChainReport, checkpoint: ChainPoint, anchor: ChainAnchor): boolean {
  if (checkpoint.rowId > anchor.rowId) return false;
  if (checkpoint.rowId === anchor.rowId && checkpoint.hash !== anchor.hash) {
    report.problem = `the retention anchor (rowid ${anchor.rowId}) is not the record the checkpoint commits to (hash ${short(checkpoint.hash)}): the pruned prefix was rewritten`;
  } else if (checkpoint.rowId < anchor.rowId) {
    report.notes.push(`the checkpoint commits to rowid ${checkpoint.rowId}, which retention has pruned (anchor at rowid ${anchor.rowId}); only the rows after the anchor were checked`);
  }
  return true;
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
