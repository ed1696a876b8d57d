import type { PutMembershipRequest, WriteResponse } from "../gen/bulkhead/v1/admin.js";
import {
  CheckRequest,
  ResolveContextRequest,
  type CheckResponse,
  type DeepPartial,
} from "../gen/bulkhead/v1/decision.js";
import { ConsumeRequest, type ConsumeResponse } from "../gen/bulkhead/v1/entitlements.js";
import { EvaluateFlagsRequest, type EvaluateFlagsResponse } from "../gen/bulkhead/v1/flags.js";
import { PutMembershipRequest as PutMembershipMessage } from "../gen/bulkhead/v1/admin.js";
import { CheckCoalescer } from "./check-coalescer.js";
import { DecisionCache, type DecisionCacheOptions } from "./decision-cache.js";
import { GrpcTransport, type GrpcTransportOptions } from "./grpc-transport.js";
import type { Transport, TransportCallOptions } from "./transport.js";
import { trustContext, type TrustedTenantContext } from "./trusted-context.js";

/** The default per-call deadline: a sidecar that does not answer in time is treated as down. */
export const DEFAULT_DEADLINE_MS = 1_000;

/** The one reason code a client-side failure produces; the server never answers it, so a host can tell "Bulkhead said no" from "Bulkhead did not answer". */
export const UNAVAILABLE_REASON = "unavailable";

/** How a {@link BulkheadClient} reaches Bulkhead and how long it waits. */
export type BulkheadClientOptions = (GrpcTransportOptions | { transport: Transport }) & {
  /** Per-call deadline in milliseconds (default {@link DEFAULT_DEADLINE_MS}). */
  deadlineMs?: number;
  /** Coalesce concurrent `check` calls of one tick into BatchCheck calls (default true). */
  coalesce?: boolean;
  /**
   * Turns on the decision cache (off by default). It subscribes to
   * WatchChanges with `adminToken` (a directory-sync token is enough) and
   * serves only while that subscription is live; see {@link DecisionCacheOptions}.
   */
  cache?: DecisionCacheOptions;
};

/** Per-call options for {@link BulkheadClient.check} and friends. */
export interface CallOptions {
  /** Overrides the client's deadline for this call. */
  deadlineMs?: number;
  /** Reject on a transport error instead of answering deny with reason `unavailable`. */
  throwOnError?: boolean;
}

/** A check request; missing fields take their proto3 defaults. */
export type CheckInput = DeepPartial<CheckRequest>;

/**
 * The typed, fail-closed client for Bulkhead.
 *
 * - Every call has a deadline (1 s unless configured).
 * - `isAllowed` is false on any error; `check` answers a deny with the single
 *   reason `unavailable` (its message carries the cause) unless the caller
 *   passes `{ throwOnError: true }`.
 * - Concurrent `check` calls in one tick travel as one BatchCheck.
 * - Read-your-writes: the highest `store_revision` returned by a write made
 *   through this client (consume, putMembership, a consuming check) is sent as `min_revision`
 *   on every later check and context resolution.
 *
 * - Optional decision cache (`cache: {}`), invalidated from WatchChanges,
 *   never serving an answer older than a revision this client has seen.
 */
export class BulkheadClient {
  private readonly transport: Transport;
  private readonly coalescer: CheckCoalescer | undefined;
  private readonly deadlineMs: number;
  private readonly cache: DecisionCache | undefined;
  private seenRevision = 0;
  /** The newest revision anything this client returned or was told about carried: the cache never answers older. */
  private observedRevision = 0;

  /** `new BulkheadClient({ address: "127.0.0.1:7070" })`, or `{ transport }` for another transport. */
  constructor(options: BulkheadClientOptions) {
    this.transport = "transport" in options ? options.transport : new GrpcTransport(options);
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.coalescer = options.coalesce === false ? undefined : new CheckCoalescer(this.transport);
    this.cache = options.cache ? new DecisionCache(this.transport, options.cache) : undefined;
  }

  /** The decision cache's state, or undefined when it is off. */
  get cacheStatus(): { live: boolean; size: number } | undefined {
    return this.cache && { live: this.cache.isLive, size: this.cache.size };
  }

  /**
   * Tells the client about a revision the host saw elsewhere (a write made
   * by another service, a webhook's answer): the cache serves nothing older
   * from then on. Checks do not wait for it; pass it as `minRevision` for that.
   */
  observeRevision(revision: number): void {
    this.observedRevision = Math.max(this.observedRevision, revision);
  }

  /** The highest store revision this client has written (0 before any write); sent as min_revision. */
  get minRevision(): number {
    return this.seenRevision;
  }

  /** One decision. Never rejects unless `throwOnError` is set: an error is a deny with reason `unavailable`. */
  async check(input: CheckInput, options: CallOptions = {}): Promise<CheckResponse> {
    let request: CheckRequest | undefined;
    try {
      request = this.withRevision(CheckRequest.fromPartial(input));
      const cached = this.cache?.lookup(request, Math.max(this.observedRevision, this.seenRevision));
      if (cached) return cached;
      const epoch = this.cache?.currentEpoch ?? 0;
      const call = this.callOptions(options);
      const response = await (this.coalescer ? this.coalescer.check(request, call) : this.transport.check(request, call));
      this.cache?.store(request, response, epoch);
      this.observeRevision(response.storeRevision);
      // A consuming check is a write: later checks must see its charge.
      return request.consume > 0 ? this.remember(response) : response;
    } catch (error) {
      if (options.throwOnError) throw error;
      return unavailableDeny(request, error);
    }
  }

  /** True only for an allow; false for a deny and for any error. */
  async isAllowed(input: CheckInput, options: Omit<CallOptions, "throwOnError"> = {}): Promise<boolean> {
    try {
      return (await this.check(input, options)).allow === true;
    } catch {
      return false;
    }
  }

  /** Many decisions, answers in input order, each exactly as `check` would give it. */
  checkMany(inputs: readonly CheckInput[], options: CallOptions = {}): Promise<CheckResponse[]> {
    return Promise.all(inputs.map((input) => this.check(input, options)));
  }

  /**
   * One BatchCheck call, answers in input order, each item on its own (ADR 56):
   * a malformed item comes back with `error` set (stable code, the item's field,
   * a message) and `allow` false, while the others carry their decisions. Not
   * coalesced and not cached. A batch in which any item consumes is one
   * all-or-nothing write on the server: one malformed item then fails the call.
   * A failed call answers every item with the `unavailable` deny (or rejects
   * with `throwOnError`); it never yields an allow.
   */
  async batchCheck(inputs: readonly CheckInput[], options: CallOptions = {}): Promise<CheckResponse[]> {
    const requests = inputs.map((input) => this.withRevision(CheckRequest.fromPartial(input)));
    try {
      const { results } = await this.transport.batchCheck({ checks: requests }, this.callOptions(options));
      if (results.length !== requests.length) throw new Error(`BatchCheck answered ${results.length} results for ${requests.length} checks`);
      const revision = Math.max(0, ...results.map((r) => r.storeRevision));
      // A consuming batch is a write: later checks must see its charges.
      if (requests.some((r) => r.consume > 0)) this.remember({ storeRevision: revision });
      else this.observeRevision(revision);
      // Only an item the server decided can be an allow.
      return results.map((r) => (r.error ? { ...r, allow: false } : r));
    } catch (error) {
      if (options.throwOnError) throw error;
      return requests.map((request) => unavailableDeny(request, error));
    }
  }

  /**
   * The trusted context of a principal; rejects (NOT_FOUND for non-members and unknown tenants alike) on any failure.
   * The answer is frozen and marked trusted: it is what `createTenantRepo`, `tenantKey` and the other
   * tenant-scoped helpers accept.
   */
  async resolveContext(input: DeepPartial<ResolveContextRequest>, options: Omit<CallOptions, "throwOnError"> = {}): Promise<TrustedTenantContext> {
    const request = ResolveContextRequest.fromPartial(input);
    request.minRevision = Math.max(request.minRevision, this.seenRevision);
    const context = await this.transport.resolveContext(request, this.callOptions(options));
    this.observeRevision(context.storeRevision);
    return trustContext(context);
  }

  /**
   * A tenant's flags (all, or `flag_keys`) for an actor, with OpenFeature-style value, variant and
   * reason; sends the client's read-your-writes revision. Rejects on error: a host must then treat
   * every flag as off (its OpenFeature default), never as on.
   */
  async evaluateFlags(input: DeepPartial<EvaluateFlagsRequest>, options: Omit<CallOptions, "throwOnError"> = {}): Promise<EvaluateFlagsResponse> {
    const request = EvaluateFlagsRequest.fromPartial(input);
    request.minRevision = Math.max(request.minRevision, this.seenRevision);
    const answer = await this.transport.evaluateFlags(request, this.callOptions(options));
    this.observeRevision(answer.storeRevision);
    return answer;
  }

  /** Counts usage against a meter; the answer's store_revision becomes the client's read-your-writes token. Rejects on error. */
  async consume(input: DeepPartial<ConsumeRequest>, options: Omit<CallOptions, "throwOnError"> = {}): Promise<ConsumeResponse> {
    return this.remember(await this.transport.consume(ConsumeRequest.fromPartial(input), this.callOptions(options)));
  }

  /** Writes a membership through AdminService (needs `adminToken`); later checks see it. Rejects on error. */
  async putMembership(input: DeepPartial<PutMembershipRequest>, options: Omit<CallOptions, "throwOnError"> = {}): Promise<WriteResponse> {
    return this.remember(await this.transport.putMembership(PutMembershipMessage.fromPartial(input), this.callOptions(options)));
  }

  /** Closes the transport; calls after close fail (and so deny). */
  async close(): Promise<void> {
    this.cache?.close();
    await this.transport.close();
  }

  private withRevision(request: CheckRequest): CheckRequest {
    request.minRevision = Math.max(request.minRevision, this.seenRevision);
    return request;
  }

  private remember<T extends { storeRevision: number }>(response: T): T {
    this.seenRevision = Math.max(this.seenRevision, response.storeRevision);
    this.observeRevision(response.storeRevision);
    return response;
  }

  private callOptions(options: Omit<CallOptions, "throwOnError">): TransportCallOptions {
    return { deadline: Date.now() + (options.deadlineMs ?? this.deadlineMs) };
  }
}

/** The deny a failed call turns into: the same shape as a server deny, one reason. */
function unavailableDeny(request: CheckRequest | undefined, error: unknown): CheckResponse {
  const cause = (error as { details?: string; message?: string })?.details || (error as Error)?.message || String(error);
  return {
    allow: false,
    reasons: [{ code: UNAVAILABLE_REASON, message: `Bulkhead did not answer: ${cause}`, details: {} }],
    decisionId: "",
    policyRevision: "",
    storeRevision: 0,
    evaluatedAt: new Date(),
    requestId: request?.principal?.requestId ?? "",
    error: undefined,
  };
}
