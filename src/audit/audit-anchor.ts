import type { Db } from "../store/database.js";
import type { AuditChainName } from "./audit-chain.js";

/**
 * Where a pruned chain now starts (ADR 57): the last row retention deleted,
 * its hash, and how many hashed rows were deleted in all. The first kept row
 * must be `rowId + 1` and chain from `hash`.
 */
export interface ChainAnchor {
  rowId: number;
  hash: string;
  /** Hashed rows pruned over the chain's life, so record counts stay comparable with checkpoints. */
  records: number;
  prunedAt: number;
}

export function readAnchor(db: Db, chain: AuditChainName): ChainAnchor | null {
  const row = db.prepare("SELECT row_id AS rowId, hash, records, pruned_at AS prunedAt FROM audit_anchor WHERE chain = ?").get(chain) as
    | ChainAnchor
    | undefined;
  return row ?? null;
}

/** Moves the chain's anchor to the last row of a prefix that is being deleted in the same transaction. */
export function writeAnchor(db: Db, chain: AuditChainName, anchor: ChainAnchor): void {
  db.prepare(
    `INSERT INTO audit_anchor (chain, row_id, hash, records, pruned_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (chain) DO UPDATE SET row_id = excluded.row_id, hash = excluded.hash, records = excluded.records, pruned_at = excluded.pruned_at`,
  ).run(chain, anchor.rowId, anchor.hash, anchor.records, anchor.prunedAt);
}
