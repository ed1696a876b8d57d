import { TenantScopeError } from "./tenant-scope-error.js";
import { requireTrustedContext, type TrustedTenantContext } from "./trusted-context.js";

/** Every object key {@link tenantObjectKey} builds starts with this folder, then the tenant id. */
export const TENANT_OBJECT_ROOT = "tenants";

/**
 * An object-storage key under the context's tenant prefix:
 * `tenants/<tenant>/<segment>/<segment>...`, for S3, GCS or a directory tree.
 *
 * `%` and `/` inside a segment are percent-escaped, so a segment can never
 * climb out of its folder or into another tenant's; empty, `.` and `..`
 * segments and control characters are refused (they mean something to file
 * systems and proxies). Throws {@link TenantScopeError} without a trusted context.
 *
 * @example
 * tenantObjectKey(context, "reports", "rep_1.csv") // "tenants/ten_acme/reports/rep_1.csv"
 */
export function tenantObjectKey(context: TrustedTenantContext, ...segments: string[]): string {
  const tenantId = requireTrustedContext(context).tenantId;
  if (segments.length === 0) throw new TenantScopeError("TENANT_SCOPE_INVALID", "segments: an object key needs at least one segment below the tenant", "segments");
  return [TENANT_OBJECT_ROOT, tenantId, ...segments].map((segment, i) => escapeSegment(segment, i === 1 ? "tenant_id" : `segments[${i - 2}]`)).join("/");
}

/** The tenant an object key belongs to, or undefined when the key is not under {@link TENANT_OBJECT_ROOT}. */
export function objectKeyTenant(key: string): string | undefined {
  const [root, tenant, ...rest] = key.split("/");
  if (root !== TENANT_OBJECT_ROOT || !tenant || rest.length === 0) return undefined;
  return unescapeSegment(tenant);
}

/**
 * Returns `key` if it lies under the context's tenant prefix; throws
 * {@link TenantScopeError} `TENANT_MISMATCH` otherwise. Use it on every key
 * that arrives from outside (a request parameter, a database column, a job).
 */
export function requireTenantObjectKey(context: TrustedTenantContext, key: string): string {
  const tenantId = requireTrustedContext(context).tenantId;
  if (objectKeyTenant(key) !== tenantId) {
    throw new TenantScopeError("TENANT_MISMATCH", `object key ${JSON.stringify(key)} is not under tenant ${tenantId}'s prefix`, "object_key");
  }
  return key;
}

// Control characters (C0, DEL, C1): header injection, log forging, odd proxies.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function escapeSegment(segment: unknown, field: string): string {
  if (typeof segment !== "string" || segment === "" || segment === "." || segment === "..") {
    throw new TenantScopeError("TENANT_SCOPE_INVALID", `${field}: an object key segment must be a non-empty string other than "." and ".."`, field);
  }
  if (CONTROL.test(segment)) throw new TenantScopeError("TENANT_SCOPE_INVALID", `${field}: control characters are not allowed in object keys`, field);
  return segment.replaceAll("%", "%25").replaceAll("/", "%2F");
}

function unescapeSegment(segment: string): string {
  return segment.replace(/%(25|2F)/g, (_, code: string) => (code === "25" ? "%" : "/"));
}
