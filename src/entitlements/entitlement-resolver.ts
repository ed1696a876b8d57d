import type { EntitlementStore, LimitReset, LimitValues, Meter, MeterKind, Plan } from "./entitlement-store.js";

/** One reason a tenant has an entitlement. */
export interface EntitlementGrant {
  key: string;
  source: "plan" | "addon" | "override" | "stripe";
  sourceId: string;
  expiresAt: number | null;
}

/** A meter's limit after plan + add-ons x quantity, or an active override. */
export interface EffectiveLimit {
  meter: string;
  kind: MeterKind;
  reset: LimitReset;
  soft: number | null;
  /** null: no hard limit, unlimited. */
  hard: number | null;
  sources: string[];
}

export interface EntitlementSnapshot {
  grants: EntitlementGrant[];
  entitlements: string[];
  limits: Record<string, EffectiveLimit>;
  /** Epoch ms at which an override expires and this answer goes stale; Infinity when none does. */
  validUntil: number;
}

/**
 * Entitlements = plan + add-ons + active grants - active revokes; limits =
 * plan + add-on limits x quantity, replaced by an active limit override.
 * Overrides stop applying at their expiry by themselves, so the snapshot
 * carries the earliest expiry for caches.
 */
export function resolveEntitlements(
  store: EntitlementStore,
  tenantId: string,
  plan: Plan | undefined,
  now: number,
  /** Stripe Entitlements features active for the tenant (lookup keys). */
  stripeFeatures: string[] = [],
): EntitlementSnapshot {
  let validUntil = Infinity;
  const active = <T extends { expiresAt: number | null }>(o: T) => o.expiresAt === null || now < o.expiresAt;
  const noteExpiry = (expiresAt: number | null) => {
    if (expiresAt !== null) validUntil = Math.min(validUntil, expiresAt);
  };

  const grants: EntitlementGrant[] = (plan?.entitlements ?? []).map((key) => ({
    key, source: "plan", sourceId: plan!.code, expiresAt: null,
  }));
  const limits = new Map<string, { soft: number | null; hard: number | null; sources: string[] }>();
  const addLimit = (l: LimitValues, times: number, source: string) => {
    const sum = (a: number | null | undefined, b: number | null) => (b === null ? (a ?? null) : (a ?? 0) + b * times);
    const known = limits.get(l.meter);
    limits.set(l.meter, {
      soft: sum(known?.soft, l.soft),
      hard: known && known.hard === null && known.sources.length > 0 ? null : sum(known?.hard, l.hard),
      sources: [...(known?.sources ?? []), source],
    });
  };
  for (const l of plan?.limits ?? []) addLimit(l, 1, `plan:${plan!.code}`);
  for (const { addon, quantity } of store.tenantAddons(tenantId)) {
    for (const key of addon.entitlements) grants.push({ key, source: "addon", sourceId: addon.code, expiresAt: null });
    for (const l of addon.limits) addLimit(l, quantity, `addon:${addon.code}x${quantity}`);
  }

  for (const key of stripeFeatures) grants.push({ key, source: "stripe", sourceId: key, expiresAt: null });
  const revoked = new Set<string>();
  for (const o of store.overrides(tenantId).filter(active)) {
    noteExpiry(o.expiresAt);
    if (o.effect === "grant") grants.push({ key: o.entitlement, source: "override", sourceId: String(o.id), expiresAt: o.expiresAt });
    else revoked.add(o.entitlement);
  }
  for (const o of store.limitOverrides(tenantId).filter(active)) {
    noteExpiry(o.expiresAt);
    limits.set(o.meter, { soft: o.soft, hard: o.hard, sources: [`override:${o.id}`] });
  }

  const kept = grants.filter((g) => !revoked.has(g.key));
  const effective: Record<string, EffectiveLimit> = {};
  for (const [meter, l] of limits) {
    const spec: Meter = store.meter(meter) ?? { name: meter, kind: "consumable", reset: "none", description: "" };
    effective[meter] = { meter, kind: spec.kind, reset: spec.reset, ...l };
  }
  return { grants: kept, entitlements: [...new Set(kept.map((g) => g.key))].sort(), limits: effective, validUntil };
}

/**
 * The usage window containing `now`. Billing periods arrive with the billing
 * domain; until a subscription says otherwise they follow calendar months (UTC).
 */
export function usageWindow(reset: LimitReset, now: number): { start: number; end: number } {
  if (reset === "none") return { start: 0, end: Infinity };
  const d = new Date(now);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}
