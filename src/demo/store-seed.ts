import type { CustomRole, Membership, Tenant, User } from "../directory/directory-store.js";
import { usageWindow } from "../entitlements/entitlement-resolver.js";
import type { Addon, EntitlementOverride, LimitOverride, Meter, Plan } from "../entitlements/entitlement-store.js";
import type { FlagInput } from "../flags/flag-store.js";
import type { ApiKeyStore } from "../identity/api-keys.js";
import type { StaffRole } from "../identity/staff-roles.js";
import type { RevisionWriter } from "../store/revision-writer.js";
import type { Stores } from "../store/stores.js";

/**
 * A whole store state as data: the demo dataset and the decision fixtures are
 * both written this way. Omitted tenant fields take the defaults below.
 */
export interface StoreSeed {
  meters?: Meter[];
  plans?: Plan[];
  addons?: Addon[];
  tenants?: (Pick<Tenant, "id" | "slug" | "planCode"> & Partial<Tenant>)[];
  users?: User[];
  memberships?: (Pick<Membership, "tenantId" | "actorId" | "role"> & Partial<Membership>)[];
  customRoles?: CustomRole[];
  tenantAddons?: { tenantId: string; addonCode: string; quantity: number }[];
  overrides?: EntitlementOverride[];
  limitOverrides?: LimitOverride[];
  /** Units used in the window that contains the seed time. */
  usage?: { tenantId: string; meter: string; used: number }[];
  flags?: FlagInput[];
  /** Billing status -> access per plan, overriding the bundle's default mapping. */
  planBillingAccess?: { planCode: string; billingStatus: string; access: "full" | "read_only" | "none" }[];
  /** Price lookup keys or price ids -> plan codes. */
  planLookupKeys?: { lookupKey: string; planCode: string }[];
  /** Stripe customer -> tenant mappings. */
  billingCustomers?: { customerId: string; tenantId: string }[];
  /** Staff members; seeded ones get no usable token (issue one with PutStaff). */
  staff?: { id: string; name: string; role: StaffRole }[];
  /** API keys with fixed raw values (cross-tenant suites); applying them needs the ApiKeyStore. */
  apiKeys?: { raw: string; tenantId: string; name: string; scopes: string[] }[];
  /** Impersonation sessions that start at the seed time. */
  impersonations?: { staffId: string; tenantId: string; asActorId: string; reason: string; ttlSeconds: number }[];
}

/** Applies a seed in one write (one revision). */
export function applySeed(writer: RevisionWriter, stores: Stores, seed: StoreSeed, apiKeys?: ApiKeyStore): number {
  if (seed.apiKeys?.length && !apiKeys) throw new Error("this seed has API keys: pass the ApiKeyStore (it holds the server secret)");
  return writer.write((tx) => {
    for (const meter of seed.meters ?? []) stores.entitlements.putMeter(tx, meter);
    for (const plan of seed.plans ?? []) stores.entitlements.putPlan(tx, plan);
    for (const addon of seed.addons ?? []) stores.entitlements.putAddon(tx, addon);
    for (const t of seed.tenants ?? []) {
      stores.directory.putTenant(tx, {
        name: t.slug,
        status: "active",
        billingStatus: "active",
        region: "us",
        isolationTier: "shared",
        tags: [],
        ...t,
      });
    }
    for (const user of seed.users ?? []) stores.directory.putUser(tx, user);
    for (const m of seed.memberships ?? []) {
      stores.directory.putMembership(tx, { actorType: "user", status: "active", ...m });
    }
    for (const role of seed.customRoles ?? []) stores.directory.putCustomRole(tx, role);
    for (const a of seed.tenantAddons ?? []) stores.entitlements.setTenantAddon(tx, a.tenantId, a.addonCode, a.quantity);
    for (const override of seed.overrides ?? []) stores.entitlements.addOverride(tx, override);
    for (const override of seed.limitOverrides ?? []) stores.entitlements.addLimitOverride(tx, override);
    for (const u of seed.usage ?? []) {
      const window = usageWindow(stores.entitlements.meter(u.meter)?.reset ?? "none", tx.now);
      stores.usage.set(tx, u.tenantId, u.meter, window.start, u.used);
    }
    for (const flag of seed.flags ?? []) stores.flags.putFlag(tx, flag);
    for (const a of seed.planBillingAccess ?? []) stores.billing.setPlanAccess(tx, a.planCode, a.billingStatus, a.access);
    for (const k of seed.planLookupKeys ?? []) stores.billing.setPlanLookupKey(tx, k.lookupKey, k.planCode);
    for (const c of seed.billingCustomers ?? []) stores.billing.mapCustomer(tx, c.customerId, c.tenantId);
    // "seeded:<id>" is never the hex HMAC of a presented token, so no token proves a seeded member.
    for (const m of seed.staff ?? []) stores.staff.put(tx, { ...m, status: "active" }, `seeded:${m.id}`);
    for (const k of seed.apiKeys ?? []) apiKeys!.importRaw(tx, k.raw, { ...k, createdBy: "seed" });
    for (const i of seed.impersonations ?? []) stores.impersonations.start(tx, { ...i, expiresAt: tx.now + i.ttlSeconds * 1000 });
  }).revision;
}
