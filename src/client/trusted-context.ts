import type { TenantContext } from "../gen/bulkhead/v1/decision.js";
import { TenantScopeError } from "./tenant-scope-error.js";

// Exists only in the type system: no value has this key, so a literal
// `{ tenantId: "ten_b" }` can never type-check as a trusted context.
declare const trustedBrand: unique symbol;

/**
 * A tenant context Bulkhead resolved (via {@link BulkheadClient.resolveContext},
 * over gRPC or in process). Frozen, so its tenant cannot be changed after the
 * fact. The tenant-scoped helpers (`createTenantRepo`, `tenantKey`, object
 * keys, the Kysely plugin, the storage router) take only this type, and check
 * at run time that the object really came from a resolution: a hand-built
 * or copied object is refused even where a cast got it past the compiler.
 */
export type TrustedTenantContext = Readonly<TenantContext> & { readonly [trustedBrand]: true };

// Identity, not shape: only objects this module froze are trusted. A
// WeakSet so contexts of finished requests are collected.
const resolved = new WeakSet<object>();

/**
 * Marks a context Bulkhead just answered as trusted. Internal: only the
 * client calls it, and package.json `exports` does not expose this file.
 * @internal
 */
export function trustContext(context: TenantContext): TrustedTenantContext {
  const frozen = Object.freeze({
    ...context,
    permissions: Object.freeze([...context.permissions]),
    entitlements: Object.freeze([...context.entitlements]),
    impersonation: context.impersonation && Object.freeze({ ...context.impersonation }),
  });
  resolved.add(frozen);
  return frozen as unknown as TrustedTenantContext;
}

/** True for a context produced by {@link BulkheadClient.resolveContext} in this process. */
export function isTrustedContext(value: unknown): value is TrustedTenantContext {
  return typeof value === "object" && value !== null && resolved.has(value);
}

/**
 * Returns `value` if it is a trusted context with a tenant, and throws
 * {@link TenantScopeError} `TENANT_CONTEXT_MISSING` naming `field` otherwise.
 * Every tenant-scoped helper starts with this.
 */
export function requireTrustedContext(value: unknown, field = "context"): TrustedTenantContext {
  if (value === undefined || value === null) {
    throw new TenantScopeError("TENANT_CONTEXT_MISSING", `${field}: a trusted tenant context is required (resolve one with BulkheadClient.resolveContext)`, field);
  }
  if (!isTrustedContext(value)) {
    throw new TenantScopeError("TENANT_CONTEXT_MISSING", `${field}: not a context Bulkhead resolved; hand-built or copied contexts are refused`, field);
  }
  if (typeof value.tenantId !== "string" || value.tenantId === "") {
    throw new TenantScopeError("TENANT_CONTEXT_MISSING", `${field}.tenant_id: the context has no tenant`, `${field}.tenant_id`);
  }
  return value;
}
