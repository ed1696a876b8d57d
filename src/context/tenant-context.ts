import type { Membership, Tenant } from "../directory/directory-store.js";
/** Limits as the policy sees them; hard null = unlimited. */
export interface LimitValue {
  soft: number | null;
  hard: number | null;
  /** ISO time the usage window resets; "" when it never does. */
  resets_at: string;
}

export const ACTOR_TYPES = ["user", "service_account", "api_key", "system", "staff"] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];

export const SOURCES = ["workspace_route", "api_key", "custom_domain", "job", "admin"] as const;
export type Source = (typeof SOURCES)[number];

/** Who asks and from where, as the caller states it (validated, not yet trusted). */
export interface Principal {
  /** Exactly one of tenantId and tenantSlug is set. */
  tenantId: string;
  tenantSlug: string;
  actorId: string;
  actorType: ActorType;
  /** A raw API key; then the key decides tenant, actor and scopes. */
  apiKey: string;
  sessionId: string;
  requestId: string;
  source: Source;
}

/**
 * The trusted facts about a member of a tenant, built only from the store.
 * Request-scoped fields (request id, session, source) are not part of it, so
 * one cached value serves every request of that member.
 */
export interface MemberContext {
  /** The tenant with its effective plan and billing status (see billing-access.ts). */
  tenant: Tenant;
  billingAccess: "full" | "read_only" | "none";
  membership: Membership;
  permissions: string[];
  entitlements: string[];
  limits: Record<string, LimitValue>;
  /** Used plus reserved units per limited meter. */
  usage: Record<string, number>;
  features: Record<string, boolean>;
  /** Set when the principal is an API key: its id and scopes, for the policy's api_key_scope check. */
  apiKey?: { id: string; scopes: string[] };
  /** Set when a staff member acts through an impersonation session; the policy restricts by staff role. */
  impersonation?: ImpersonationContext;
  /** Store revision of the snapshot this was read from. */
  builtAtRevision: number;
  /** Epoch ms after which it is stale even without a write. */
  validUntil: number;
}

/** As the policy and the decision log see an impersonation (snake_case: it is policy input). */
export interface ImpersonationContext {
  session_id: string;
  staff_id: string;
  staff_role: string;
  as_actor_id: string;
  reason: string;
  expires_at: string;
}

/**
 * The outcome of resolving a principal: a member, or nobody. A non-member
 * outcome deliberately carries no tenant facts, so neither the policy nor the
 * response can reveal whether the tenant exists.
 */
export type Resolution =
  | { kind: "member"; context: MemberContext }
  | { kind: "non_member"; tenantId: string };
