/**
 * `bulkhead/client`: the typed, fail-closed client a host service uses to ask
 * Bulkhead. Loads only grpc-js and the generated messages; never the server,
 * SQLite or the policy engine (test/unit/client-imports.test.ts walks it).
 * @packageDocumentation
 */
export { BulkheadClient, DEFAULT_DEADLINE_MS, UNAVAILABLE_REASON } from "./bulkhead-client.js";
export type { BulkheadClientOptions, CallOptions, CheckInput } from "./bulkhead-client.js";
export { CheckCoalescer, SERVER_BATCH_MAX } from "./check-coalescer.js";
export { CheckItemFailure } from "./check-item-failure.js";
export { GrpcTransport } from "./grpc-transport.js";
export type { GrpcTransportOptions } from "./grpc-transport.js";
export type { Transport, TransportCallOptions } from "./transport.js";
export type { CheckItemError, CheckResponse, TenantContext, Reason } from "../gen/bulkhead/v1/decision.js";
export type { ConsumeResponse } from "../gen/bulkhead/v1/entitlements.js";
export type { WriteResponse } from "../gen/bulkhead/v1/admin.js";
export type { Clock } from "../clock.js";

// Tenant scoping on the host side (issue 12): everything below takes a trusted
// context from resolveContext and fails closed with a TenantScopeError.
export { isTrustedContext, requireTrustedContext } from "./trusted-context.js";
export type { TrustedTenantContext } from "./trusted-context.js";
export { TENANT_SCOPE_ERRORS, TenantScopeError } from "./tenant-scope-error.js";
export type { TenantScopeErrorCode } from "./tenant-scope-error.js";
export { createTenantRepo } from "./tenant-repo.js";
export type { FindManyOptions, RowFilter, RowId, TenantRepo, TenantRepoDefinitions, TenantTableRepo } from "./tenant-repo.js";
export { tenantTable } from "./tenant-table.js";
export type { AnyRow, TenantTable } from "./tenant-table.js";
export type { DriverTable, ScopedFilter, SelectOptions, TenantRepoDriver } from "./tenant-repo-driver.js";
export { logViolationToStderr } from "./tenant-violation.js";
export type { TenantViolation, TenantViolationSink } from "./tenant-violation.js";
export { TENANT_KEY_PREFIX, tenantKey } from "./tenant-key.js";
export type { TenantKeyPart } from "./tenant-key.js";
export { TENANT_OBJECT_ROOT, objectKeyTenant, requireTenantObjectKey, tenantObjectKey } from "./object-key.js";
export { DownloadUrlRejected, DownloadUrlSigner } from "./download-url-signer.js";
export type { DownloadUrlRejection, DownloadUrlSignerOptions, SigningKey, VerifiedDownload } from "./download-url-signer.js";
export { ISOLATION_TIERS, TenantStorageRouter } from "./tenant-storage-router.js";
export type { IsolationTier, TenantPlacement, TenantStorageConfig } from "./tenant-storage-router.js";

// Jobs that re-check at run time, and the optional decision cache.
export { runTenantJob, tenantJob, TenantJobUnavailableError } from "./tenant-job.js";
export type { TenantJobEnvelope, TenantJobRun, TenantJobDenial, TenantJobOutcome, RunTenantJobOptions } from "./tenant-job.js";
export { SqliteJobRunStore } from "./job-run-store.js";
export type { JobRunStore, JobClaim, SqliteDatabaseLike, SqliteJobRunStoreOptions } from "./job-run-store.js";
export { DecisionCache, cacheKey } from "./decision-cache.js";
export type { DecisionCacheOptions } from "./decision-cache.js";
export type { ChangeHandlers, ChangeSubscription } from "./transport.js";
