import type { Change, WatchChangesRequest, WriteResponse, PutMembershipRequest } from "../gen/bulkhead/v1/admin.js";
import type { BatchCheckRequest, BatchCheckResponse, CheckRequest, CheckResponse, ResolveContextRequest, TenantContext } from "../gen/bulkhead/v1/decision.js";
import type { ConsumeRequest, ConsumeResponse } from "../gen/bulkhead/v1/entitlements.js";
import type { EvaluateFlagsRequest, EvaluateFlagsResponse } from "../gen/bulkhead/v1/flags.js";

/** Per-call options every transport honours. */
export interface TransportCallOptions {
  /** Epoch milliseconds after which the call must fail rather than answer. */
  deadline: number;
}

/**
 * How a {@link BulkheadClient} reaches a decision core: over gRPC
 * ({@link GrpcTransport}) or in the host's own process (`bulkhead/embedded`).
 * Requests and answers are the wire messages of `proto/bulkhead/v1`, so
 * every transport gives the same answer for the same store. A failed call
 * rejects; the client turns that into a deny.
 */
export interface Transport {
  /** One decision (DecisionService.Check). */
  check(request: CheckRequest, options: TransportCallOptions): Promise<CheckResponse>;
  /** Many decisions in request order (DecisionService.BatchCheck). */
  batchCheck(request: BatchCheckRequest, options: TransportCallOptions): Promise<BatchCheckResponse>;
  /** The trusted context of a principal (DecisionService.ResolveContext). */
  resolveContext(request: ResolveContextRequest, options: TransportCallOptions): Promise<TenantContext>;
  /** A tenant's (and actor's) flags with OpenFeature-style details (FlagService.EvaluateFlags). */
  evaluateFlags(request: EvaluateFlagsRequest, options: TransportCallOptions): Promise<EvaluateFlagsResponse>;
  /** Counts usage against a meter (EntitlementService.Consume). */
  consume(request: ConsumeRequest, options: TransportCallOptions): Promise<ConsumeResponse>;
  /** Writes one membership (AdminService.PutMembership); needs admin credentials. */
  putMembership(request: PutMembershipRequest, options: TransportCallOptions): Promise<WriteResponse>;
  /**
   * Subscribes to AdminService.WatchChanges (needs a credential with
   * `changes.watch`, such as a directory-sync token). Optional: a client
   * decision cache needs it and never serves without a live subscription.
   */
  watchChanges?(request: WatchChangesRequest, handlers: ChangeHandlers): ChangeSubscription;
  /** Releases connections or the store. */
  close(): void | Promise<void>;
}

/** What a change subscription reports, in this order: open once, changes, then end once. */
export interface ChangeHandlers {
  /** The server accepted the subscription (its headers arrived). */
  onOpen(): void;
  /** One change record, in revision order. */
  onChange(change: Change): void;
  /** The subscription is over (error, server end or cancel); nothing more arrives. */
  onEnd(error?: unknown): void;
}

/** A running change subscription. */
export interface ChangeSubscription {
  /** Stops it; `onEnd` follows. */
  cancel(): void;
}
