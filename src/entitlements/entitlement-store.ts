import type { WriteScope } from "../store/revision-writer.js";

export const LIMIT_RESETS = ["none", "calendar_month", "billing_period"] as const;
export type LimitReset = (typeof LIMIT_RESETS)[number];

export interface PlanLimit {
  meter: string;
  soft: number | null;
  hard: number | null;
  reset: LimitReset;
}

export interface Plan {
  code: string;
  name: string;
  entitlements: string[];
  limits: PlanLimit[];
}

export interface EntitlementOverride {
  tenantId: string;
  entitlement: string;
  effect: "grant" | "revoke";
  reason: string;
  author: string;
  /** Epoch ms after which the override no longer applies; null = no expiry. */
  expiresAt: number | null;
}

/** Plans, their entitlements and limits, per-tenant overrides, and usage counters. */
export interface EntitlementStore {
  plan(code: string): Plan | undefined;
  overrides(tenantId: string): EntitlementOverride[];
  /** Units used of a meter in the window that starts at `windowStart`. */
  usage(tenantId: string, meter: string, windowStart: number): number;

  putPlan(tx: WriteScope, plan: Plan): void;
  addOverride(tx: WriteScope, override: EntitlementOverride): void;
  setUsage(tx: WriteScope, tenantId: string, meter: string, windowStart: number, used: number): void;
}
