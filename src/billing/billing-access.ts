import type { Tenant } from "../directory/directory-store.js";
import type { BillingState } from "./billing-store.js";
import { FREE_PLAN } from "./billing-projector.js";

export const DEFAULT_PAST_DUE_GRACE_DAYS = 14;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface EffectiveBilling {
  planCode: string;
  billingStatus: string;
  access: "full" | "read_only" | "none";
  /** Epoch ms at which time alone changes the answer (grace ends, the period ends). */
  validUntil: number;
}

export interface BillingAccessRules {
  /** Per-plan override (plan_billing_access), else undefined. */
  planAccess(planCode: string, billingStatus: string): string | undefined;
  /** The policy bundle's default mapping (policies/bulkhead/billing_access/data.json). */
  defaultAccess(billingStatus: string): string | undefined;
  pastDueGraceDays: number;
}

/**
 * Billing status -> access level, as data: a per-plan override, else the
 * bundle's default, else none. Two rules depend on time alone: past_due keeps
 * its mapped access for a grace period from when it began, then drops to
 * read_only; a subscription set to cancel at period end counts as canceled
 * (back on the free plan) once the period is over, even before Stripe says so.
 */
export function effectiveBilling(tenant: Tenant, state: BillingState | undefined, rules: BillingAccessRules, now: number): EffectiveBilling {
  let { planCode, billingStatus, validUntil } = effectivePlan(tenant, state, now);
  let access = mapAccess(rules, planCode, billingStatus);
  if (billingStatus === "past_due" && state) {
    const graceEnds = state.statusSince + rules.pastDueGraceDays * DAY_MS;
    if (now >= graceEnds) access = access === "none" ? "none" : "read_only";
    else validUntil = Math.min(validUntil, graceEnds);
  }
  return { planCode, billingStatus, access, validUntil };
}

/** The plan and status in force at `now`: a subscription that cancels at period end is over once the period is. */
export function effectivePlan(tenant: Tenant, state: BillingState | undefined, now: number): { planCode: string; billingStatus: string; validUntil: number } {
  if (state?.cancelAtPeriodEnd && state.currentPeriodEnd !== null) {
    if (now >= state.currentPeriodEnd) return { planCode: FREE_PLAN, billingStatus: "canceled", validUntil: Infinity };
    return { planCode: tenant.planCode, billingStatus: tenant.billingStatus, validUntil: state.currentPeriodEnd };
  }
  return { planCode: tenant.planCode, billingStatus: tenant.billingStatus, validUntil: Infinity };
}

function mapAccess(rules: BillingAccessRules, planCode: string, status: string): EffectiveBilling["access"] {
  const access = rules.planAccess(planCode, status) ?? rules.defaultAccess(status);
  return access === "full" || access === "read_only" ? access : "none";
}
