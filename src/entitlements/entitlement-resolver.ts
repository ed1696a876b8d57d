import type { EntitlementOverride, EntitlementStore, LimitReset, Plan } from "./entitlement-store.js";

export interface LimitValue {
  soft: number | null;
  hard: number | null;
}

export interface ResolvedEntitlements {
  entitlements: string[];
  limits: Record<string, LimitValue>;
  usage: Record<string, number>;
  /** Epoch ms at which this answer goes stale without any write (an override
   * expires, a usage window rolls over); Infinity when nothing does. */
  validUntil: number;
}

/**
 * Entitlement set = plan entitlements + active grants - active revokes.
 * An override stops applying at its expiry by itself, so the answer carries
 * the earliest expiry as `validUntil` for caches.
 */
export function resolveEntitlements(
  store: EntitlementStore,
  tenantId: string,
  plan: Plan | undefined,
  now: number,
): ResolvedEntitlements {
  const set = new Set(plan?.entitlements ?? []);
  let validUntil = Infinity;
  for (const override of store.overrides(tenantId)) {
    if (!isActive(override, now)) continue;
    if (override.expiresAt !== null) validUntil = Math.min(validUntil, override.expiresAt);
    if (override.effect === "grant") set.add(override.entitlement);
    else set.delete(override.entitlement);
  }
  const limits: Record<string, LimitValue> = {};
  const usage: Record<string, number> = {};
  for (const limit of plan?.limits ?? []) {
    limits[limit.meter] = { soft: limit.soft, hard: limit.hard };
    const window = usageWindow(limit.reset, now);
    usage[limit.meter] = store.usage(tenantId, limit.meter, window.start);
    validUntil = Math.min(validUntil, window.end);
  }
  return { entitlements: [...set].sort(), limits, usage, validUntil };
}

function isActive(override: EntitlementOverride, now: number): boolean {
  return override.expiresAt === null || now < override.expiresAt;
}

/**
 * The usage window containing `now`. Billing periods arrive with the billing
 * domain; until a subscription says otherwise they follow calendar months.
 */
export function usageWindow(reset: LimitReset, now: number): { start: number; end: number } {
  if (reset === "none") return { start: 0, end: Infinity };
  const d = new Date(now);
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return { start, end };
}
