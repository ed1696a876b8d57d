import type { DirectoryStore } from "../directory/directory-store.js";
import { BulkheadError } from "../errors.js";
import type { Db } from "../store/database.js";
import { readRevision } from "../store/revision-writer.js";
import type { SqliteBillingStore } from "../billing/billing-store.js";
import { effectivePlan } from "../billing/billing-access.js";
import { readMeterState, remaining, type MeterState } from "../usage/meter-state.js";
import type { UsageStore } from "../usage/usage-store.js";
import { resolveEntitlements, type EntitlementGrant } from "./entitlement-resolver.js";
import type { EntitlementStore } from "./entitlement-store.js";

export interface LimitReport extends MeterState {
  remaining: number | null;
}

export interface EntitlementReport {
  tenantId: string;
  planCode: string;
  billingStatus: string;
  grants: EntitlementGrant[];
  limits: LimitReport[];
  storeRevision: number;
}

/** What GetEntitlements answers, read in one snapshot. */
export function readEntitlementReport(
  deps: { db: Db; directory: DirectoryStore; entitlements: EntitlementStore; usage: UsageStore; billing: SqliteBillingStore },
  tenantId: string,
  now: number,
): EntitlementReport {
  return deps.db.transaction(() => {
    const storeRevision = readRevision(deps.db);
    const tenant = deps.directory.tenantById(tenantId);
    if (!tenant) throw new BulkheadError("TENANT_NOT_FOUND", "no such tenant", "tenant_id");
    const features = deps.billing.features(tenantId);
    const { planCode } = effectivePlan(tenant, deps.billing.state(tenantId), now);
    const snapshot = resolveEntitlements(deps.entitlements, tenantId, deps.entitlements.plan(planCode), now, features);
    const limits = Object.values(snapshot.limits).map((limit) => {
      const state = readMeterState(deps, tenantId, limit, now);
      const left = remaining(state);
      return { ...state, remaining: Number.isFinite(left) ? left : null };
    });
    return {
      tenantId,
      planCode,
      billingStatus: tenant.billingStatus,
      grants: snapshot.grants,
      limits,
      storeRevision,
    };
  })();
}
