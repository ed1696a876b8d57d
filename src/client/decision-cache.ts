import { LRUCache } from "lru-cache";
import type { Change } from "../gen/bulkhead/v1/admin.js";
import type { CheckRequest, CheckResponse } from "../gen/bulkhead/v1/decision.js";
import type { ChangeSubscription, Transport } from "./transport.js";

/** Options for the client's decision cache (`new BulkheadClient({ ..., cache: {} })`). */
export interface DecisionCacheOptions {
  /** Most answers kept (default 10 000, least recently used go first). */
  max?: number;
  /**
   * Longest time one answer is served, in milliseconds (default 1000). Some
   * answers change with time and no revision (a billing grace period ends,
   * a usage window resets, a key expires) and a policy reload changes
   * answers without a store revision: this bounds how long either goes unseen.
   */
  maxAgeMs?: number;
  /** Wait before re-subscribing after the WatchChanges stream ended (default 1000 ms). */
  retryMs?: number;
}

interface Entry {
  answer: CheckResponse;
  tenantId: string;
}

/**
 * Decisions keyed by every input a decision depends on, tagged with the
 * store revision they were made at, and invalidated from the sidecar's
 * WatchChanges stream (per tenant; a global change invalidates all). It
 * serves only while that stream is live, and only an answer that is not
 * older than the newest revision the host has seen: either made at or
 * after it, or older but with the stream past it and no change to its
 * tenant since. Anything it cannot key safely (consuming checks, API keys,
 * tenant slugs, staff) is never cached. See docs/client.md.
 */
export class DecisionCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly retryMs: number;
  private subscription: ChangeSubscription | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private live = false;
  private closed = false;
  /** Bumped whenever the stream drops: an answer fetched across a drop is not stored. */
  private epoch = 0;
  /** Changes are known from here on (the first subscription's after_revision). */
  private from: number | undefined;
  /** The newest revision the stream has delivered. */
  private watched = 0;
  private globalRevision = 0;
  private readonly tenantRevisions = new Map<string, number>();
  private policyRevision = "";

  constructor(private readonly transport: Transport, options: DecisionCacheOptions = {}) {
    if (!transport.watchChanges) throw new TypeError("cache: the transport has no watchChanges; a cache that cannot hear changes would serve stale answers");
    this.entries = new LRUCache({ max: options.max ?? 10_000, ttl: options.maxAgeMs ?? 1_000 });
    this.retryMs = options.retryMs ?? 1_000;
  }

  /** True while the WatchChanges subscription is open; only then is anything served or stored. */
  get isLive(): boolean {
    return this.live;
  }

  /** Answers cached now (some may be invalid and are dropped when next asked for). */
  get size(): number {
    return this.entries.size;
  }

  /** The epoch to hand back to {@link store}, taken before the request is sent. */
  get currentEpoch(): number {
    return this.epoch;
  }

  /** A cached answer for `request` that is at least as fresh as `seenRevision`, or undefined. */
  lookup(request: CheckRequest, seenRevision: number): CheckResponse | undefined {
    if (!this.live) return undefined;
    const key = cacheKey(request);
    const entry = key === undefined ? undefined : this.entries.get(key);
    if (!entry) return undefined;
    if (entry.answer.storeRevision < this.revisionOf(entry.tenantId)) {
      this.entries.delete(key!);
      return undefined;
    }
    const seen = Math.max(seenRevision, request.minRevision);
    if (entry.answer.storeRevision < seen && this.watched < seen) return undefined;
    return { ...entry.answer, requestId: request.principal?.requestId ?? "" };
  }

  /** Keeps a fresh answer, if it is safe to serve later; starts the subscription on first use. */
  store(request: CheckRequest, answer: CheckResponse, epoch: number): void {
    if (this.closed) return;
    if (this.from === undefined) return this.subscribe(answer.storeRevision);
    const key = cacheKey(request);
    if (key === undefined || !this.live || epoch !== this.epoch || answer.storeRevision < this.from) return;
    const tenantId = request.principal!.tenantId;
    if (answer.storeRevision < this.revisionOf(tenantId)) return;
    if (answer.policyRevision !== this.policyRevision) {
      // A reload changed what every decision means.
      this.entries.clear();
      this.policyRevision = answer.policyRevision;
    }
    this.entries.set(key, { answer, tenantId });
  }

  /** Stops the subscription; nothing is served afterwards. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.drop();
    this.subscription?.cancel();
  }

  private subscribe(afterRevision: number): void {
    this.from ??= afterRevision;
    this.subscription = this.transport.watchChanges!({ afterRevision: Math.max(afterRevision, this.watched), tenantId: "" }, {
      onOpen: () => {
        if (!this.closed) this.live = true;
      },
      onChange: (change) => this.observe(change),
      onEnd: () => {
        this.drop();
        if (this.closed) return;
        this.retryTimer = setTimeout(() => this.subscribe(this.watched), this.retryMs);
        this.retryTimer.unref();
      },
    });
  }

  private observe(change: Change): void {
    this.watched = Math.max(this.watched, change.revision);
    if (change.tenantId === "") this.globalRevision = Math.max(this.globalRevision, change.revision);
    else this.tenantRevisions.set(change.tenantId, Math.max(this.tenantRevisions.get(change.tenantId) ?? 0, change.revision));
  }

  /** Not live: forget every answer, so none outlives the stream that would have invalidated it. */
  private drop(): void {
    this.live = false;
    this.epoch++;
    this.entries.clear();
  }

  private revisionOf(tenantId: string): number {
    return Math.max(this.globalRevision, this.tenantRevisions.get(tenantId) ?? 0);
  }
}

/**
 * Everything a decision depends on besides the store, policy and time:
 * principal (without its request id), action and resource. `undefined`
 * for a request that must always go to Bulkhead: it consumes or has an
 * idempotency key (a write), carries an API key (verified and rate-limited
 * per call), names its tenant by slug (change records are keyed by id) or
 * is staff (impersonation sessions expire on their own and are audited).
 */
export function cacheKey(request: CheckRequest): string | undefined {
  const p = request.principal;
  if (!p || request.consume > 0 || request.idempotencyKey !== "" || p.apiKey !== "" || p.tenantId === "" || p.tenantSlug !== "" || p.actorType === "staff") return undefined;
  const r = request.resource;
  return JSON.stringify([
    p.tenantId, p.actorId, p.actorType, p.sessionId, p.source, request.action,
    r?.type ?? "", r?.id ?? "", r?.tenantId ?? "", r?.ownerId ?? "", stableJson(r?.attributes),
  ]);
}

/** JSON with object keys sorted, so equal attributes give equal keys. */
function stableJson(value: unknown): string {
  if (value === undefined) return "";
  return JSON.stringify(value, (_k, v) => (v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));
}
