/**
 * `bulkhead/client`: the typed, fail-closed client a host service uses to ask
 * Bulkhead. Loads only grpc-js and the generated messages; never the server,
 * SQLite or the policy engine (test/unit/client-imports.test.ts walks it).
 * @packageDocumentation
 */
export { BulkheadClient, DEFAULT_DEADLINE_MS, UNAVAILABLE_REASON } from "./bulkhead-client.js";
export type { BulkheadClientOptions, CallOptions, CheckInput } from "./bulkhead-client.js";
export { CheckCoalescer, SERVER_BATCH_MAX } from "./check-coalescer.js";
export { GrpcTransport } from "./grpc-transport.js";
export type { GrpcTransportOptions } from "./grpc-transport.js";
export type { Transport, TransportCallOptions } from "./transport.js";
export type { CheckResponse, TenantContext, Reason } from "../gen/bulkhead/v1/decision.js";
export type { ConsumeResponse } from "../gen/bulkhead/v1/entitlements.js";
export type { WriteResponse } from "../gen/bulkhead/v1/admin.js";
export { runTenantJob, tenantJob, TenantJobUnavailableError } from "./tenant-job.js";
export type { TenantJobEnvelope, TenantJobRun, TenantJobDenial, TenantJobOutcome, RunTenantJobOptions } from "./tenant-job.js";
export { SqliteJobRunStore } from "./job-run-store.js";
export type { JobRunStore, JobClaim, SqliteDatabaseLike, SqliteJobRunStoreOptions } from "./job-run-store.js";
export { DecisionCache, cacheKey } from "./decision-cache.js";
export type { DecisionCacheOptions } from "./decision-cache.js";
export type { ChangeHandlers, ChangeSubscription } from "./transport.js";
