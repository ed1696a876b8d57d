import { invalidArgument } from "../errors.js";
import { checkId, checkPattern, requireId } from "../validation.js";
import { MEMBER_ACTOR_TYPES, MEMBERSHIP_STATUSES, TENANT_STATUSES, type Tenant } from "./directory-store.js";
import type { MembershipSpec } from "./directory-admin.js";

const SLUG = /^[a-z0-9][a-z0-9-]*$/;
const TEXT = /^[^\u0000-\u001f]*$/;

export const ADMIN_LIMITS = { reasonLength: 500, nameLength: 200, tags: 20, syncSize: 10_000 } as const;

/** Requests as they arrive: every field a string (or missing), checked here. */
type Raw<T> = { [K in keyof T]?: T[K] extends string ? string : T[K] };

export function validateReason(reason: string | undefined): string {
  const value = (reason ?? "").trim();
  if (value === "") throw invalidArgument("reason", "is required for every admin write");
  checkText(value, "reason", ADMIN_LIMITS.reasonLength);
  return value;
}

export function validateTenant(raw: Raw<Tenant> & { tags?: string[] }): Tenant {
  const id = requireId(raw.id, "tenant_id");
  const slug = raw.slug ?? "";
  if (!slug) throw invalidArgument("slug", "is required");
  checkPattern(slug, SLUG, "slug", "must be lowercase letters, digits and '-'");
  const status = (raw.status || "active") as Tenant["status"];
  if (!TENANT_STATUSES.includes(status)) throw invalidArgument("status", `must be one of ${TENANT_STATUSES.join(", ")}`);
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
  const actorType = (raw.actorType || "user") as MembershipSpec["actorType"];
  if (!MEMBER_ACTOR_TYPES.includes(actorType)) throw invalidArgument(`${field}.actor_type`, `must be one of ${MEMBER_ACTOR_TYPES.join(", ")}`);
  const status = (raw.status || "active") as MembershipSpec["status"];
  if (!MEMBERSHIP_STATUSES.includes(status)) throw invalidArgument(`${field}.status`, `must be one of ${MEMBERSHIP_STATUSES.join(", ")}`);
  return { actorId, actorType, role: requireId(raw.role, `${field}.role`), status };
}

export function validateMembershipList(raw: Raw<MembershipSpec>[]): MembershipSpec[] {
  if (raw.length > ADMIN_LIMITS.syncSize) throw invalidArgument("memberships", `at most ${ADMIN_LIMITS.syncSize} per sync`);
  return raw.map((m, i) => validateMembership(m, `memberships[${i}]`));
}

function checkText(value: string, field: string, max: number): void {
  if (value.length > max) throw invalidArgument(field, `must be at most ${max} characters`);
  if (!TEXT.test(value)) throw invalidArgument(field, "must not contain control characters");
}
