import type { WriteScope } from "../store/revision-writer.js";

export const LIMIT_RESETS = ["none", "calendar_month", "billing_period"] as const;
export type LimitReset = (typeof LIMIT_RESETS)[number];

export const METER_KINDS = ["consumable", "count", "seats"] as const;
export type MeterKind = (typeof METER_KINDS)[number];

export interface Meter {
  name: string;
  kind: MeterKind;
  reset: LimitReset;
  description: string;
}

/** soft/hard of null: no such threshold (a null hard limit is unlimited). */
export interface LimitValues {
  meter: string;
  soft: number | null;
  hard: number | null;
}

export interface Plan {
  code: string;
  name: string;
  entitlements: string[];
  limits: LimitValues[];
}

/** An add-on: entitlements, plus limits per unit of quantity. */
export interface Addon {
  code: string;
  name: string;
  entitlements: string[];
  limits: LimitValues[];
}

export interface TenantAddon {
  addon: Addon;
  quantity: number;
}

interface OverrideBase {
  tenantId: string;
  reason: string;
  author: string;
  /** Epoch ms at which the override stops applying; null = no expiry. */
  expiresAt: number | null;
}

export interface EntitlementOverride extends OverrideBase {
  entitlement: string;
  effect: "grant" | "revoke";
}

export interface LimitOverride extends OverrideBase, LimitValues {}

/** Stored overrides carry their row id, which GetEntitlements reports as the source. */
export type Stored<T> = T & { id: number };

/** Meters, plans, add-ons and per-tenant overrides. */
export interface EntitlementStore {
  meter(name: string): Meter | undefined;
  plan(code: string): Plan | undefined;
  tenantAddons(tenantId: string): TenantAddon[];
  hasAddon(code: string): boolean;
  overrides(tenantId: string): Stored<EntitlementOverride>[];
  limitOverrides(tenantId: string): Stored<LimitOverride>[];

  putMeter(tx: WriteScope, meter: Meter): void;
  putPlan(tx: WriteScope, plan: Plan): void;
  putAddon(tx: WriteScope, addon: Addon): void;
  setTenantAddon(tx: WriteScope, tenantId: string, addonCode: string, quantity: number): void;
  /** Returns the override's id. */
  addOverride(tx: WriteScope, override: EntitlementOverride): number;
  /** Only the tenant's own override: an id from another tenant removes nothing. */
  removeOverride(tx: WriteScope, tenantId: string, id: number): boolean;
  addLimitOverride(tx: WriteScope, override: LimitOverride): void;
}
