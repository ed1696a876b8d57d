import { TenantScopeError } from "./tenant-scope-error.js";
import { requireTrustedContext, type TrustedTenantContext } from "./trusted-context.js";

/** The isolation tiers a tenant's `isolation_tier` may name (AdminService PutTenant sets it). */
export const ISOLATION_TIERS = ["shared", "regional", "dedicated"] as const;

/** One of {@link ISOLATION_TIERS}. */
export type IsolationTier = (typeof ISOLATION_TIERS)[number];

/**
 * Where each tier's data lives. `C` is whatever the host connects with: a
 * `sqliteDriver(db)`, a Kysely instance, a bucket name.
 */
export interface TenantStorageConfig<C> {
  /** The multi-tenant database of tenants on the `shared` tier. */
  shared?: C;
  /** Per region (the context's `region`), the multi-tenant database of tenants on the `regional` tier. */
  regional?: Readonly<Record<string, C>>;
  /** Per tenant id, the database of a tenant on the `dedicated` tier. */
  dedicated?: Readonly<Record<string, C>>;
}

/** Where a context's data lives, and why. */
export interface TenantPlacement<C> {
  tier: IsolationTier;
  /** `shared`, the region, or the tenant id: the configuration entry used. */
  entry: string;
  connection: C;
}

/**
 * Picks a tenant's database from its trusted context's `isolation_tier` and
 * `region`, by configuration. Moving a tenant to a dedicated database is a
 * copy plus two configuration changes (add it under `dedicated`, then set its
 * tier with PutTenant), not a code change.
 *
 * Fail closed: a tier with no configured connection for this tenant or
 * region throws; a dedicated or regional tenant never falls back to the
 * shared database, where its data must not be written.
 */
export class TenantStorageRouter<C> {
  private readonly config: TenantStorageConfig<C>;

  /** Throws {@link TenantScopeError} `TENANT_SCOPE_INVALID` when no tier has a connection. */
  constructor(config: TenantStorageConfig<C>) {
    if (config?.shared === undefined && !config?.regional && !config?.dedicated) {
      throw new TenantScopeError("TENANT_SCOPE_INVALID", "config: configure at least one of shared, regional, dedicated", "config");
    }
    this.config = { shared: config.shared, regional: { ...config.regional }, dedicated: { ...config.dedicated } };
  }

  /** The connection for the context's tenant. */
  connectionFor(context: TrustedTenantContext): C {
    return this.placementOf(context).connection;
  }

  /** The connection and the configuration entry that chose it (for logs and tests). */
  placementOf(context: TrustedTenantContext): TenantPlacement<C> {
    const { tenantId, region, isolationTier } = requireTrustedContext(context);
    switch (isolationTier) {
      case "shared":
        return this.pick("shared", "shared", this.config.shared, "shared");
      case "regional":
        return this.pick("regional", region, own(this.config.regional!, region), `regional.${region || "(no region)"}`);
      case "dedicated":
        return this.pick("dedicated", tenantId, own(this.config.dedicated!, tenantId), `dedicated.${tenantId}`);
      default:
        throw new TenantScopeError("TENANT_SCOPE_INVALID", `context.isolation_tier: unknown tier ${JSON.stringify(isolationTier)} for tenant ${tenantId}`, "context.isolation_tier");
    }
  }

  private pick(tier: IsolationTier, entry: string, connection: C | undefined, field: string): TenantPlacement<C> {
    if (connection === undefined) {
      throw new TenantScopeError("TENANT_SCOPE_INVALID", `${field}: no connection is configured; refusing to fall back to another tier`, field);
    }
    return { tier, entry, connection };
  }
}

/** An own property only: a tenant called `constructor` must not find Object.prototype's. */
function own<C>(map: Readonly<Record<string, C>>, key: string): C | undefined {
  return key !== "" && Object.hasOwn(map, key) ? map[key] : undefined;
}
