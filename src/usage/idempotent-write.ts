import { createHash } from "node:crypto";
import { BulkheadError } from "../errors.js";
import type { RevisionWriter, WriteScope } from "../store/revision-writer.js";
import type { UsageStore } from "./usage-store.js";

/**
 * The idempotency key of a write the sidecar keys itself (Commit, Release).
 * It contains a space, which caller keys (printable ASCII without spaces,
 * `checkToken`) cannot, so a caller's Consume with key `commit:<id>` can never
 * take the slot of that reservation's commit.
 */
export function internalKey(operation: string, id: string): string {
  return `internal ${operation} ${id}`;
}

/** How long a retried call gets its original answer back. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface IdempotentResult<T> {
  answer: T;
  /** True when the stored answer of an earlier call was returned. */
  replayed: boolean;
  /** The revision the write committed as (or saw, when it wrote nothing). */
  revision: number;
}

/**
 * Runs `work` in one write, handing it the stored answer when `key` already
 * answered the same request for this tenant (a different request with the
 * key is refused with IDEMPOTENCY_KEY_REUSED). `work` decides what a replay
 * returns: metering returns the stored answer; a Check re-evaluates first so
 * a retry never resurrects an allow the actor has since lost. Only answers
 * that changed something are kept (`keep`): a denial consumed nothing. The
 * lookup happens inside the IMMEDIATE transaction, so two concurrent calls
 * with one key cannot both do the work.
 */
export function idempotentWrite<T>(
  deps: { writer: RevisionWriter; usage: UsageStore },
  scope: { tenantId: string; key: string; operation: string; request: unknown },
  work: (tx: WriteScope, replay: T | undefined) => { answer: T; keep: boolean; replayed?: boolean },
): IdempotentResult<T> {
  const requestHash = createHash("sha256").update(scope.operation).update(JSON.stringify(scope.request)).digest("hex");
  const { result, revision } = deps.writer.write((tx) => {
    const stored = deps.usage.idempotent(scope.tenantId, scope.key, tx.now);
    if (stored && (stored.operation !== scope.operation || stored.requestHash !== requestHash)) {
      throw new BulkheadError("IDEMPOTENCY_KEY_REUSED", "idempotency key was used for a different request", "idempotency_key");
    }
    const { answer, keep, replayed = false } = work(tx, stored && (JSON.parse(stored.response) as T));
    if (keep && !stored) {
      const record = { operation: scope.operation, requestHash, response: JSON.stringify(answer) };
      deps.usage.remember(tx, scope.tenantId, scope.key, record, tx.now + IDEMPOTENCY_TTL_MS);
    }
    return { answer, replayed };
  });
  return { ...result, revision };
}
