import { invalidArgument } from "../errors.js";
import { checkId, checkPattern, requireId } from "../validation.js";
import type { Plan } from "../entitlements/entitlement-store.js";
import { MEMBER_ACTOR_TYPES, MEMBERSHIP_STATUSES, TENANT_STATUSES, type Tenant, type User } from "./directory-store.js";
import type { MembershipSpec } from "./directory-admin.js";

const SLUG = /^[a-z0-9][a-z0-9-]*$/;
const TEXT = /^[^\u0000-\u001f]*$/;
/**
 * Characters a reader cannot see or tell apart: format characters
 * (zero-width space and joiners, direction overrides, BOM), other controls,
 * private-use and unassigned code points, line and paragraph separators.
 */
const INVISIBLE = /[\p{Cf}\p{Cc}\p{Co}\p{Cn}\u2028\u2029]/u;

export const ADMIN_LIMITS = { reasonLength: 500, nameLength: 200, tags: 20, syncSize: 10_000 } as const;

/** Requests as they arrive: every field a string (or missing), checked here. */
type Raw<T> = { [K in keyof T]?: T[K] extends string ? string : T[K] };

/**
 * A reason is a configured reason code, optionally followed by ": " and free
 * text ("customer_request: ticket 4711"), so audits can be filtered by code.
 */
export function validateReason(reason: string | undefined, codes: readonly string[]): string {
  const value = (reason ?? "").trim();
  if (value === "") throw invalidArgument("reason", `is required for every admin write (one of ${codes.join(", ")})`);
  checkText(value, "reason", ADMIN_LIMITS.reasonLength);
  const code = value.split(":", 1)[0]!.trim();
  if (!codes.includes(code)) throw invalidArgument("reason", `must start with a reason code: one of ${codes.join(", ")} (got '${code}')`);
  return value;
}

export function validateTenant(raw: Raw<Tenant> & { tags?: string[] }): Tenant {
  const id = requireId(raw.id, "tenant_id");
  const slug = raw.slug ?? "";
  if (!slug) throw invalidArgument("slug", "is required");
  checkPattern(slug, SLUG, "slug", "must be lowercase letters, digits and '-'");
  // Deletion is a workflow (DeleteTenant: confirmation, key revocation, sessions ended), never a status write.
  if (raw.status === "deleted") throw invalidArgument("status", "use DeleteTenant to delete a tenant");
  const status = oneOf(raw.status, TENANT_STATUSES.filter((s) => s !== "deleted"), "status", "active");
  const name = raw.name || slug;
  checkText(name, "name", ADMIN_LIMITS.nameLength);
  const tags = raw.tags ?? [];
  if (tags.length > ADMIN_LIMITS.tags) throw invalidArgument("tags", `at most ${ADMIN_LIMITS.tags}`);
  tags.forEach((t, i) => checkId(t, `tags[${i}]`));
  const billingStatus = raw.billingStatus || "active";
  checkId(billingStatus, "billing_status");
  const region = raw.region || "us";
  checkId(region, "region");
  const isolationTier = raw.isolationTier || "shared";
  checkId(isolationTier, "isolation_tier");
  return { id, slug, name, status, planCode: requireId(raw.planCode, "plan_code"), billingStatus, region, isolationTier, tags };
}

export function validateMembership(raw: Raw<MembershipSpec> | undefined, field = "membership"): MembershipSpec {
  if (!raw) throw invalidArgument(field, "is required");
  const actorId = requireId(raw.actorId, `${field}.actor_id`);
  const actorType = oneOf(raw.actorType, MEMBER_ACTOR_TYPES, `${field}.actor_type`, "user");
  const status = oneOf(raw.status, MEMBERSHIP_STATUSES, `${field}.status`, "active");
  return { actorId, actorType, role: requireId(raw.role, `${field}.role`), status };
}

export function validateMembershipList(raw: Raw<MembershipSpec>[]): MembershipSpec[] {
  if (raw.length > ADMIN_LIMITS.syncSize) throw invalidArgument("memberships", `at most ${ADMIN_LIMITS.syncSize} per sync`);
  return raw.map((m, i) => validateMembership(m, `memberships[${i}]`));
}

export function checkText(value: string, field: string, max: number): void {
  if (value.length > max) throw invalidArgument(field, `must be at most ${max} characters`);
  if (!TEXT.test(value)) throw invalidArgument(field, "must not contain control characters");
  if (INVISIBLE.test(value)) throw invalidArgument(field, "must not contain invisible characters (zero-width, direction marks, private use)");
  // NFKC folds look-alikes such as fullwidth letters and ligatures; text that
  // changes under it can pass for other text, so only the folded form is accepted.
  if (value.normalize("NFKC") !== value) throw invalidArgument(field, "must not contain confusable characters (fullwidth forms, ligatures, compatibility characters): use their plain form");
}

const EMAIL = /^[^\s@]+@[^\s@]+$/;

export function validateUser(raw: { userId?: string; email?: string; displayName?: string }): User {
  const id = requireId(raw.userId, "user_id");
  const email = raw.email ?? "";
  if (!email) throw invalidArgument("email", "is required");
  checkText(email, "email", ADMIN_LIMITS.nameLength);
  if (!EMAIL.test(email)) throw invalidArgument("email", "must look like name@domain");
  const displayName = raw.displayName || email;
  checkText(displayName, "display_name", ADMIN_LIMITS.nameLength);
  return { id, email, displayName };
}

/** A list of identifiers (permissions, entitlements, scopes), bounded. */
export function validateIdList(values: string[], field: string, max = 200): string[] {
  if (values.length > max) throw invalidArgument(field, `at most ${max}`);
  values.forEach((v, i) => checkId(v, `${field}[${i}]`));
  return values;
}

export function validatePlan(raw: { planCode?: string; name?: string; entitlements?: string[]; limits?: { meter?: string; soft?: number | undefined; hard?: number | undefined }[] }): Plan {
  const code = requireId(raw.planCode, "plan_code");
  const name = raw.name || code;
  checkText(name, "name", ADMIN_LIMITS.nameLength);
  const limits = (raw.limits ?? []).map((l, i) => {
    const meter = requireId(l.meter, `limits[${i}].meter`);
    const soft = l.soft ?? null;
    const hard = l.hard ?? null;
    if (soft !== null && hard !== null && soft > hard) throw invalidArgument(`limits[${i}].soft`, "must not exceed hard");
    return { meter, soft, hard };
  });
  return { code, name, entitlements: validateIdList(raw.entitlements ?? [], "entitlements"), limits };
}

/** An RFC 3339 time as epoch ms; "" = none. */
export function optionalTime(value: string | undefined, field: string): number | null {
  if (!value) return null;
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) throw invalidArgument(field, "must be an RFC 3339 time such as 2026-12-31T00:00:00Z");
  return ms;
}

export const OVERRIDE_EFFECTS = ["grant", "revoke"] as const;

export function validateEffect(value: string | undefined): (typeof OVERRIDE_EFFECTS)[number] {
  if (!OVERRIDE_EFFECTS.includes(value as never)) throw invalidArgument("effect", `must be one of ${OVERRIDE_EFFECTS.join(", ")}`);
  return value as (typeof OVERRIDE_EFFECTS)[number];
}

export function validateName(value: string | undefined, field: string): string {
  if (!value) throw invalidArgument(field, "is required");
  checkText(value, field, ADMIN_LIMITS.nameLength);
  return value;
}

/** One of a closed list of values; empty takes the default when there is one. */
export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], field: string, fallback?: T): T {
  const v = value || fallback;
  if (v === undefined || !allowed.includes(v as T)) throw invalidArgument(field, `must be one of ${allowed.join(", ")}`);
  return v as T;
}
