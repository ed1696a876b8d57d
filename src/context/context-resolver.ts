import { LRUCache } from "lru-cache";
import type { Clock } from "../clock.js";
import type { DirectoryStore, Membership, Tenant } from "../directory/directory-store.js";
import { resolveEntitlements } from "../entitlements/entitlement-resolver.js";
import type { EntitlementStore } from "../entitlements/entitlement-store.js";
import { evaluateFlags, type FlagSubject } from "../flags/flag-evaluator.js";
import type { FlagStore } from "../flags/flag-store.js";
import type { ChangeTracker } from "../store/change-tracker.js";
import type { Db } from "../store/database.js";
import { readRevision } from "../store/revision-writer.js";
import { effectiveBilling } from "../billing/billing-access.js";
import type { SqliteBillingStore } from "../billing/billing-store.js";
import { readMeterState } from "../usage/meter-state.js";
import type { UsageStore } from "../usage/usage-store.js";
import { keyValidUntil, type ApiKey } from "../identity/api-keys.js";
import type { ImpersonationStore } from "../identity/impersonation-store.js";
import type { StaffStore } from "../identity/staff-store.js";
import type { RoleCatalog } from "./role-catalog.js";
import type { LimitValue, MemberContext, Principal, Resolution } from "./tenant-context.js";

export interface CachedResolution {
  resolution: Resolution;
  /** The tenant whose change records expire this entry. */
  tenantId: string;
  builtAtRevision: number;
  validUntil: number;
}

export interface ContextResolverDeps {
  db: Db;
  directory: DirectoryStore;
  entitlements: EntitlementStore;
  flags: FlagStore;
  usage: UsageStore;
  billing: SqliteBillingStore;
  staff: StaffStore;
  impersonations: ImpersonationStore;
  pastDueGraceDays: number;
  /** The environment flag rules see (BULKHEAD_ENVIRONMENT); default "production". */
  environment?: string;
  tracker: ChangeTracker;
  roles: RoleCatalog;
  clock: Clock;
  /** Most member contexts kept in memory. */
  cacheSize?: number;
  /**
   * Most bytes of member contexts kept in memory (estimated), default 64 MiB.
   * A count alone let 200,000 distinct members push the process past 500 MiB,
   * since one context's size depends on its roles, plan and flags.
   */
  cacheBytes?: number;
}

/** The environment a sidecar serves when BULKHEAD_ENVIRONMENT is not set. */
export const DEFAULT_FLAG_ENVIRONMENT = "production";

/** Default byte budget of the context cache: keeps a sidecar's heap well under 256 MiB. */
export const CONTEXT_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * What one cached entry costs, estimated: its JSON text at two bytes a
 * character (V8 strings and objects are of that order), plus a fixed
 * overhead for the entry, its key and the LRU's bookkeeping. Computed once
 * per miss, which is rare next to hits and cheap next to a store read.
 */
export function estimatedEntryBytes(entry: CachedResolution, key: string): number {
  return 2 * (JSON.stringify(entry.resolution).length + key.length) + 512;
}

/**
 * Principal -> trusted MemberContext, read from the store in one snapshot and
 * cached per (policy revision, tenant, actor). An entry is served only while
 * no change to its tenant has been seen since it was built (ChangeTracker) and
 * its validUntil has not passed; callers sync the tracker first.
 */
export class ContextResolver {
  private readonly cache: LRUCache<string, CachedResolution>;
  private readonly cacheCounts = { hits: 0, misses: 0 };
  private readonly readSnapshot;

  private readonly readKeySnapshot;

  constructor(private readonly deps: ContextResolverDeps) {
    this.cache = new LRUCache({ max: deps.cacheSize ?? 50_000, maxSize: deps.cacheBytes ?? CONTEXT_CACHE_BYTES, sizeCalculation: estimatedEntryBytes });
    this.readSnapshot = deps.db.transaction((principal: Principal) => this.readFromStore(principal));
    this.readKeySnapshot = deps.db.transaction((key: ApiKey): Resolution => {
      const revision = readRevision(deps.db);
      const tenant = deps.directory.tenantById(key.tenantId);
      if (!tenant) return { kind: "non_member", tenantId: key.tenantId };
      const membership = { tenantId: tenant.id, actorId: key.id, actorType: "service_account" as const, role: "api_key", status: "active" as const };
      const context = this.buildMemberContext(tenant, membership, revision);
      return {
        kind: "member",
        context: {
          ...context,
          permissions: key.scopes,
          apiKey: { id: key.id, scopes: key.scopes },
          validUntil: Math.min(context.validUntil, keyValidUntil(key)),
        },
      };
    });
  }

  /**
   * Reads straight from the store, bypassing the cache: for use inside a
   * write transaction (Check with consume), where the answer must reflect
   * exactly the state the write will change.
   */
  resolveUncached(principal: Principal): Resolution {
    return this.readFromStore(principal);
  }

  resolve(principal: Principal): Resolution {
    const key = this.cacheKey(principal);
    const cached = this.cache.get(key);
    if (cached && this.isFresh(cached)) {
      this.cacheCounts.hits++;
      return cached.resolution;
    }
    this.cacheCounts.misses++;
    const revision = this.deps.tracker.revision;
    const resolution = this.readSnapshot(principal);
    if (resolution.kind === "member") {
      const { context } = resolution;
      this.cache.set(key, { resolution, tenantId: context.tenant.id, builtAtRevision: context.builtAtRevision, validUntil: context.validUntil });
    } else if (principal.tenantId) {
      // Non-members are cached too (attack traffic should not cost a store
      // read each time), but only when named by id: a membership or tenant
      // created later is a change record for that very id, which expires the
      // entry. A slug names no id to watch, so slug misses are not cached.
      this.cache.set(key, { resolution, tenantId: principal.tenantId, builtAtRevision: revision, validUntil: Infinity });
    } else {
      this.cache.delete(key);
    }
    return resolution;
  }

  /**
   * The context of an authenticated API key: a member of the key's tenant
   * whose permissions are exactly the key's scopes. Cached like a member,
   * and stale once the key expires or retires.
   */
  resolveForKey(key: ApiKey): Resolution {
    const cacheKey = `${this.deps.roles.revision}\u0000apikey\u0000${key.id}`;
    const cached = this.cache.get(cacheKey);
    if (cached && this.isFresh(cached)) {
      this.cacheCounts.hits++;
      return cached.resolution;
    }
    this.cacheCounts.misses++;
    const resolution = this.readKeySnapshot(key);
    if (resolution.kind === "member") {
      const { context } = resolution;
      this.cache.set(cacheKey, { resolution, tenantId: key.tenantId, builtAtRevision: context.builtAtRevision, validUntil: context.validUntil });
    }
    return resolution;
  }

  resolveForKeyUncached(key: ApiKey): Resolution {
    return this.readKeySnapshot(key);
  }

  tenantOf(tenantId: string): Tenant | undefined {
    return this.deps.directory.tenantById(tenantId);
  }

  private isFresh(entry: CachedResolution): boolean {
    return entry.builtAtRevision >= this.deps.tracker.revisionOf(entry.tenantId) && this.deps.clock.now() < entry.validUntil;
  }

  private cacheKey(p: Principal): string {
    const tenant = p.tenantId ? `id:${p.tenantId}` : `slug:${p.tenantSlug}`;
    return `${this.deps.roles.revision}\u0000${tenant}\u0000${p.actorType}\u0000${p.actorId}`;
  }

  private readFromStore(principal: Principal): Resolution {
    const { directory } = this.deps;
    const revision = readRevision(this.deps.db);
    const tenant = principal.tenantId
      ? directory.tenantById(principal.tenantId)
      : directory.tenantBySlug(principal.tenantSlug);
    const requested = principal.tenantId || principal.tenantSlug;
    if (!tenant) return { kind: "non_member", tenantId: requested };
    if (principal.actorType === "staff") return this.readImpersonation(tenant, principal.actorId, revision, requested);
    const membership = directory.membership(tenant.id, principal.actorId);
    // The stated actor type must match the membership: a service account id
    // presented as a user (or the reverse) is nobody.
    if (!membership || membership.actorType !== principal.actorType) {
      return { kind: "non_member", tenantId: requested };
    }
    return { kind: "member", context: this.buildMemberContext(tenant, membership, revision) };
  }

  /**
   * A staff actor is nobody in a tenant unless they hold a live impersonation
   * session there; then they see the impersonated member's context, marked
   * with the session, until the exact moment it expires.
   */
  private readImpersonation(tenant: Tenant, staffId: string, revision: number, requested: string): Resolution {
    const now = this.deps.clock.now();
    const staff = this.deps.staff.get(staffId);
    const session = staff?.status === "active" ? this.deps.impersonations.live(staffId, tenant.id, now) : undefined;
    if (!staff || !session) return { kind: "non_member", tenantId: requested };
    const membership = this.deps.directory.membership(tenant.id, session.asActorId);
    if (membership?.status !== "active") return { kind: "non_member", tenantId: requested };
    const context = this.buildMemberContext(tenant, membership, revision);
    const impersonation = {
      session_id: session.id, staff_id: staff.id, staff_role: staff.role, as_actor_id: session.asActorId,
      reason: session.reason, expires_at: new Date(session.expiresAt).toISOString(),
    };
    return { kind: "member", context: { ...context, impersonation, validUntil: Math.min(context.validUntil, session.expiresAt) } };
  }

  /**
   * What flag rules see for a tenant and, when it is an active member, an
   * actor: the same effective plan and entitlements a Check sees. A tenant
   * unknown to the store has no plan, entitlements or tags (DESIGN.md section
   * 8), so only rules that need none of them can match. Read from the store
   * every time: flag evaluation over FlagService and OFREP is not cached.
   */
  flagSubject(tenantId: string, actorId?: string): FlagSubject {
    const environment = this.deps.environment ?? DEFAULT_FLAG_ENVIRONMENT;
    const tenant = this.deps.directory.tenantById(tenantId);
    const base = { tenantId, ...(actorId && { actorId }), environment };
    if (!tenant) return { ...base, planCode: null, entitlements: [], tags: [] };
    const { billing, snapshot } = this.tenantFacts(tenant, this.deps.clock.now());
    const membership = actorId ? this.deps.directory.membership(tenant.id, actorId) : undefined;
    const role = membership?.status === "active" ? membership.role : undefined;
    return { ...base, ...(role && { role }), planCode: billing.planCode, entitlements: snapshot.entitlements, tags: tenant.tags };
  }

  /** Effective billing and entitlements at `now`: one derivation for Checks and flag subjects. */
  private tenantFacts(tenant: Tenant, now: number) {
    const rules = {
      planAccess: (planCode: string, status: string) => this.deps.billing.planAccess(planCode, status),
      defaultAccess: (status: string) => this.deps.roles.billingAccessOf(status),
      pastDueGraceDays: this.deps.pastDueGraceDays,
    };
    const billing = effectiveBilling(tenant, this.deps.billing.state(tenant.id), rules, now);
    const plan = this.deps.entitlements.plan(billing.planCode);
    const features = this.deps.billing.features(tenant.id);
    const snapshot = resolveEntitlements(this.deps.entitlements, tenant.id, plan, now, features);
    return { billing, snapshot };
  }

  private buildMemberContext(tenant: Tenant, membership: Membership, revision: number): MemberContext {
    const now = this.deps.clock.now();
    const { billing, snapshot } = this.tenantFacts(tenant, now);
    const effectiveTenant = { ...tenant, planCode: billing.planCode, billingStatus: billing.billingStatus };
    let validUntil = Math.min(snapshot.validUntil, billing.validUntil);
    const limits: Record<string, LimitValue> = {};
    const usage: Record<string, number> = {};
    // Held reservations count as usage until they lapse, which needs no write.
    validUntil = Math.min(validUntil, this.deps.usage.nextHoldExpiry(tenant.id, now) ?? Infinity);
    for (const limit of Object.values(snapshot.limits)) {
      const state = readMeterState(this.deps, tenant.id, limit, now);
      const resets = Number.isFinite(state.window.end);
      limits[limit.meter] = { soft: limit.soft, hard: limit.hard, resets_at: resets ? new Date(state.window.end).toISOString() : "" };
      usage[limit.meter] = state.used + state.reserved;
      validUntil = Math.min(validUntil, state.window.end);
    }
    return {
      tenant: effectiveTenant,
      billingAccess: billing.access,
      membership,
      permissions: this.permissionsOf(tenant.id, membership.role),
      entitlements: snapshot.entitlements,
      limits,
      usage,
      features: evaluateFlags(this.deps.flags.all(), {
        tenantId: tenant.id,
        actorId: membership.actorId,
        role: membership.role,
        planCode: billing.planCode,
        entitlements: snapshot.entitlements,
        tags: tenant.tags,
        environment: this.deps.environment ?? DEFAULT_FLAG_ENVIRONMENT,
      }),
      builtAtRevision: revision,
      validUntil,
    };
  }

  /** Built-in roles come from the policy bundle; anything else is the tenant's custom role. */
  private permissionsOf(tenantId: string, role: string): string[] {
    const builtIn = this.deps.roles.permissionsOf(role);
    if (builtIn) return [...builtIn];
    return this.deps.directory.customRole(tenantId, role)?.permissions ?? [];
  }

  /**
   * Drops every cached context. Called when the policy bundle is swapped:
   * cache keys carry the policy revision, so entries of the old one can never
   * be hit again, and without this they sat in the LRU until evicted (RSS grew
   * with every hot reload in the benchmark's soak).
   */
  forgetAll(): void {
    this.cache.clear();
  }

  /** Entries and estimated bytes held, and lookups answered from the cache or not, for metrics and tests. */
  get cacheUsage(): { entries: number; bytes: number; hits: number; misses: number } {
    return { entries: this.cache.size, bytes: this.cache.calculatedSize, ...this.cacheCounts };
  }
}
