import { type AdminActor, type AuditedWriter, type WriteResult } from "../audit/audited-write.js";
import { requireWritableTenant } from "../directory/directory-admin.js";
import type { DirectoryStore } from "../directory/directory-store.js";
import { BulkheadError, invalidArgument } from "../errors.js";
import { approvalAction, type ApprovableChange, type Approvals } from "../identity/approvals.js";
import type { EntitlementOverride, EntitlementStore, Plan } from "./entitlement-store.js";

/**
 * The plan catalog and per-tenant entitlement overrides. A plan is shared by
 * every tenant on it, so changing one is a global write: it needs
 * all_tenants and an approval from a second staff member.
 */
export class CommercialAdmin {
  constructor(
    private readonly deps: {
      audited: AuditedWriter;
      entitlements: EntitlementStore;
      directory: DirectoryStore;
      approvals: Approvals;
    },
  ) {}

  putPlan(plan: Plan, global: { allTenants: boolean; approvalId: string }, by: AdminActor): WriteResult {
    const change = planChange(plan);
    const action = approvalAction(change.verb, change.object, change.content);
    if (!global.allTenants) {
      throw new BulkheadError("APPROVAL_REQUIRED", `all_tenants: a plan applies to every tenant on it; set all_tenants and an approval for '${action}'`, "all_tenants");
    }
    plan.limits.forEach((l, i) => {
      if (!this.deps.entitlements.meter(l.meter)) throw invalidArgument(`limits[${i}].meter`, `unknown meter '${l.meter}'`);
    });
    return this.deps.audited.write(by, { tenantId: null, object: `plan:${plan.code}`, action: "plan.put" }, (tx) => {
      this.deps.approvals.spend(tx, global.approvalId, change, by.caller.actor);
      this.deps.entitlements.putPlan(tx, plan);
    });
  }

  putOverride(override: EntitlementOverride, by: AdminActor): WriteResult & { overrideId: number } {
    const { tenantId } = override;
    const { revision, changed, result } = this.deps.audited.write(
      by,
      { tenantId, object: `entitlement:${tenantId}/${override.entitlement}`, action: `override.${override.effect}` },
      (tx) => {
        requireWritableTenant(this.deps.directory, tenantId);
        if (override.expiresAt !== null && override.expiresAt <= tx.now) throw invalidArgument("expires_at", "is in the past");
        return this.deps.entitlements.addOverride(tx, override);
      },
    );
    return { revision, changed, overrideId: result };
  }

  removeOverride(tenantId: string, overrideId: number, by: AdminActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `override:${tenantId}/${overrideId}`, action: "override.remove" }, (tx) => {
      if (!this.deps.entitlements.removeOverride(tx, tenantId, overrideId)) {
        throw new BulkheadError("ADMIN_NOT_FOUND", `override_id: no override ${overrideId} in ${tenantId}`, "override_id");
      }
    });
  }
}

/** What a plan write asks a second person to approve: the whole plan as it will be stored. */
export function planChange(plan: Plan): ApprovableChange {
  return { verb: "plan.put", object: plan.code, content: plan };
}
