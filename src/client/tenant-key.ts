import { TenantScopeError } from "./tenant-scope-error.js";
import { requireTrustedContext, type TrustedTenantContext } from "./trusted-context.js";

/** One part of a {@link tenantKey}: a string, or a finite number (written in decimal, so `1` and `"1"` are the same part). */
export type TenantKeyPart = string | number;

/** Every key {@link tenantKey} builds starts with this, then the tenant id. */
export const TENANT_KEY_PREFIX = "tenant";

/**
 * A cache key that belongs to the context's tenant: `tenant:<tenant>:<part>:<part>...`.
 *
 * Unambiguous: `%` and `:` inside the tenant id and inside every part are
 * percent-escaped before the parts are joined with `:`, so the key decodes to
 * exactly one (tenant, parts) list. `tenantKey(ctx, "a:b")` and
 * `tenantKey(ctx, "a", "b")` differ, and no choice of parts for one tenant
 * can spell a key of another. Throws {@link TenantScopeError} without a
 * trusted context or for a part that is not a string or finite number.
 *
 * @example
 * cache.get(tenantKey(context, "dashboard", projectId)) // "tenant:ten_acme:dashboard:prj_1"
 */
export function tenantKey(context: TrustedTenantContext, ...parts: TenantKeyPart[]): string {
  const tenantId = requireTrustedContext(context).tenantId;
  return [TENANT_KEY_PREFIX, tenantId, ...parts.map(checkedPart)].map(escapeKeyPart).join(":");
}

function checkedPart(part: unknown, index: number): string {
  if (typeof part === "string") return part;
  if (typeof part === "number" && Number.isFinite(part)) return String(part);
  throw new TenantScopeError("TENANT_SCOPE_INVALID", `parts[${index}]: a key part must be a string or a finite number, got ${String(part)}`, `parts[${index}]`);
}

/** `%` first, so an escaped `:` (`%3A`) cannot be confused with a literal `%3A` (`%253A`). */
function escapeKeyPart(part: string): string {
  return part.replaceAll("%", "%25").replaceAll(":", "%3A");
}
