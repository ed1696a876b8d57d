import { LRUCache } from "lru-cache";
import type { Clock } from "../clock.js";
import type { Resolution } from "../context/tenant-context.js";
import type { PolicyDecision } from "../engine/decision-result.js";
import { POLICY_TIMEOUT } from "../engine/policy-set.js";
import type { CheckInput } from "./check-input.js";

/** What the key needs to know of the policy set that answers. */
export interface CachingPolicy {
  readonly revision: string;
  /** The bundle may read `input.context.request_id`: then every request id is its own key (ADR 68). */
  readonly readsRequestId: boolean;
}

interface CachedDecision {
  result: PolicyDecision;
  /** The context's own validUntil: the same rule as the context cache (isFresh). */
  validUntil: number;
}

/**
 * Policy results of non-consuming Checks, keyed by the identity of the
 * resolved context object, the policy revision and every request field the
 * policy input carries (ADR 68). The resolver hands out the same context
 * object only while it is fresh (no change to its tenant since it was built,
 * validUntil not passed), so a write, an expiry or a policy swap makes a new
 * object and every entry of the old one unreachable: invalidation is by
 * construction, never by a hook someone can forget. The policy cannot read
 * the clock (the host offers no time builtin; PolicySet.load refuses a
 * bundle that needs one), so the result is a pure function of the key.
 *
 * Only the policy's answer is kept: decision id, time, revisions and the
 * decision-log record are made per decision by the Decider, and the
 * boundary guard runs on every answer, hit or miss.
 */
export class DecisionCache {
  private readonly entries: LRUCache<string, CachedDecision>;
  /** A number per context object; WeakMap, so a dropped context frees its number. */
  private readonly identities = new WeakMap<object, number>();
  private nextIdentity = 1;
  private readonly counts = { hits: 0, misses: 0 };

  constructor(private readonly deps: { clock: Clock; maxBytes: number }) {
    this.entries = new LRUCache({ maxSize: deps.maxBytes, sizeCalculation: estimatedBytes });
  }

  /**
   * The key for this Check, or undefined when its answer must not be cached:
   * a consuming Check (its answer depends on the charge it makes), or a
   * non-member named by slug (the resolver does not cache those, so every
   * call brings a new object and the entry could never be hit).
   */
  keyOf(input: CheckInput, resolution: Resolution, policy: CachingPolicy): string | undefined {
    if (input.consume > 0) return undefined;
    const p = input.principal;
    if (resolution.kind !== "member" && !p.tenantId) return undefined;
    const r = input.resource;
    // JSON of an array: unambiguous whatever the fields contain, and every
    // field buildPolicyInput copies from the request is here.
    return JSON.stringify([
      policy.revision, this.identityOf(resolution), p.tenantId, p.tenantSlug, p.actorType, p.actorId, p.source, p.sessionId,
      policy.readsRequestId ? p.requestId : null,
      input.action, r.type, r.id, r.tenantId, r.ownerId, r.attributes, input.asserted ?? null,
    ]);
  }

  get(key: string): PolicyDecision | undefined {
    const entry = this.entries.get(key);
    if (entry && this.deps.clock.now() < entry.validUntil) {
      this.counts.hits++;
      return entry.result;
    }
    if (entry) this.entries.delete(key);
    this.counts.misses++;
    return undefined;
  }

  /** Keeps a result, unless it is a fail-closed deny for running out of time: the next call may well finish. */
  remember(key: string, resolution: Resolution, result: PolicyDecision): void {
    if (result.reasons.some((r) => r.code === POLICY_TIMEOUT)) return;
    const validUntil = resolution.kind === "member" ? resolution.context.validUntil : Infinity;
    // Frozen: a hit hands the same reasons to many decisions, so none may change them.
    Object.freeze(result.reasons);
    this.entries.set(key, { result: Object.freeze(result), validUntil });
  }

  /** Drops every entry (a policy swap: the old revision's keys can never be hit again). */
  forgetAll(): void {
    this.entries.clear();
  }

  /** Entries, estimated bytes and lookups, for metrics and tests. */
  get usage(): { entries: number; bytes: number; hits: number; misses: number } {
    return { entries: this.entries.size, bytes: this.entries.calculatedSize, ...this.counts };
  }

  private identityOf(resolution: Resolution): number {
    const holder = resolution.kind === "member" ? resolution.context : resolution;
    let id = this.identities.get(holder);
    if (id === undefined) {
      id = this.nextIdentity++;
      this.identities.set(holder, id);
    }
    return id;
  }
}

/**
 * Estimated heap cost of one entry: the key at two bytes a character, each
 * reason's text, and a fixed overhead for the entry objects and the LRU's
 * bookkeeping (the context cache's estimate, estimatedEntryBytes, is of the same kind).
 */
function estimatedBytes(entry: CachedDecision, key: string): number {
  let reasons = 0;
  for (const r of entry.result.reasons) reasons += 2 * (r.code.length + r.message.length) + 64 * Object.keys(r.details).length + 96;
  return 2 * key.length + reasons + 256;
}
