/**
 * Why a tenant-scoped helper refused to act. Host code maps these to its own
 * answers (a missing or foreign row is a 404, never a 403); the codes are
 * stable, the messages are for people.
 */
export const TENANT_SCOPE_ERRORS = {
  /** No trusted tenant context: none given, or one not produced by {@link BulkheadClient.resolveContext}. */
  TENANT_CONTEXT_MISSING: "no trusted tenant context",
  /** A row, object key or insert names a tenant other than the context's. */
  TENANT_MISMATCH: "another tenant's data",
  /** A query the scoping layer cannot put a tenant condition on (raw SQL, an undeclared table). */
  TENANT_QUERY_UNSCOPED: "a query that cannot be scoped to the tenant",
  /** A table definition, router configuration or key part is malformed. */
  TENANT_SCOPE_INVALID: "invalid tenant scoping input",
} as const;

/** One of {@link TENANT_SCOPE_ERRORS}. */
export type TenantScopeErrorCode = keyof typeof TENANT_SCOPE_ERRORS;

/**
 * Thrown by the tenant-scoped helpers (`createTenantRepo`, the Kysely plugin,
 * `tenantKey`, object keys, the storage router). Fail closed: each of them
 * throws instead of running a query, returning a row or building a key that
 * might belong to another tenant.
 */
export class TenantScopeError extends Error {
  override readonly name = "TenantScopeError";

  /**
   * @param code - the stable condition
   * @param message - what happened, for logs
   * @param field - the input at fault (`context`, `tenant_id`, `tables.projects.columns`), when one is
   */
  constructor(
    readonly code: TenantScopeErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}
