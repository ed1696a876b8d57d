import { createHash } from "node:crypto";
import type { Db } from "../store/database.js";

/**
 * The hash chains over the two audit tables (ADR 66). Each row's
 * `chain_hash` is SHA-256 over the previous row's hash and the row's own
 * columns, in rowid order, so a row that is changed, inserted, deleted or
 * moved breaks the chain at the first row after the tampering. A chain alone
 * cannot show a truncated tail or a wholesale rewrite by someone who can run
 * this code: a checkpoint (its last rowid and hash, signed with Ed25519 and
 * kept off-host, see audit-checkpoint.ts) can.
 *
 * The hash covers the values as stored (reasons as their JSON text, allow as
 * 0/1), so verify recomputes it from the row without knowing how it was
 * written.
 */
export const AUDIT_CHAINS = {
  decision_log: [
    "decision_id", "at", "tenant_id", "actor_id", "actor_type", "action", "resource_type", "resource_id",
    "resource_tenant_id", "allow", "reasons", "policy_revision", "store_revision", "request_id", "source", "impersonation",
  ],
  admin_audit: ["at", "actor", "tenant_id", "object", "action", "reason", "source", "result"],
} as const;

export type AuditChainName = keyof typeof AUDIT_CHAINS;
export const AUDIT_CHAIN_NAMES = Object.keys(AUDIT_CHAINS) as AuditChainName[];

/** The hash of a row whose predecessor's hash is `previous` ("" for the first row of a chain). */
export function chainHash(previous: string, values: readonly unknown[]): string {
  // One update of the same bytes: previous, "\n", the values as JSON.
  return createHash("sha256").update(`${previous}\n${JSON.stringify(values)}`).digest("hex");
}

/** The values the hash covers, in the chain's column order, from a row or an insert's parameters. */
export function chainValues(chain: AuditChainName, row: Record<string, unknown>): unknown[] {
  return AUDIT_CHAINS[chain].map((column) => row[column] ?? null);
}

/**
 * Hands out hashes for rows appended inside one write transaction: it reads
 * the chain's head once (the last row's hash; a row from before migration 9
 * has none, and the chain starts again from "") and advances it per
 * appended row. Must be created inside the transaction that inserts, which
 * holds SQLite's write lock, so two processes cannot extend the same head.
 */
export class ChainHead {
  private head: string;

  constructor(db: Db, private readonly chain: AuditChainName) {
    this.head = (db.prepare(`SELECT chain_hash FROM ${chain} ORDER BY rowid DESC LIMIT 1`).pluck().get() as string | null | undefined) ?? "";
  }

  /** The hash for the next row; `commit` it once the insert really added the row. */
  next(row: Record<string, unknown>): string {
    return chainHash(this.head, chainValues(this.chain, row));
  }

  /** next() for values already in the chain's column order (chainValues' array). */
  nextOf(values: readonly unknown[]): string {
    return chainHash(this.head, values);
  }

  commit(hash: string): void {
    this.head = hash;
  }
}
