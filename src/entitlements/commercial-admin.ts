import { adminCommand, runAdminCommand, type AdminActor, type AuditedWriter, type CommandActor, type WriteResult } from "../audit/audited-write.js";
import type { Clock } from "../clock.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { CommandRegistry } from "../store/store-command.js";
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
  /**
   * The writes as commands (ADR 75). An override's expiry is checked against
   * the command's time (tx.now), so every sidecar agrees on it.
   */
  private readonly kinds;

  constructor(
    private readonly deps: {
      audited: AuditedWriter;
      entitlements: EntitlementStore;
      directory: DirectoryStore;
      approvals: Approvals;
      commands: CommandWriter;
      registry: CommandRegistry;
      clock: Clock;
    },
  ) {
    const r = deps.registry;
    this.kinds = {
      putPlan: r.register(adminCommand("plan.put", (_tx, b: { plan: Plan; approvalId: string }, by) => this.applyPutPlan(b.plan, b.approvalId, by))),
      putOverride: r.register(adminCommand("override.put", (_tx, b: { override: EntitlementOverride }, by) => this.applyPutOverride(b.override, by))),
      removeOverride: r.register(adminCommand("override.remove", (_tx, b: { tenantId: string; overrideId: number }, by) =>
        this.applyRemoveOverride(b.tenantId, b.overrideId, by))),
    };
  }

  /** A global write: it needs all_tenants and a second person's approval, checked again when the entry is applied. */
  async putPlan(plan: Plan, global: { allTenants: boolean; approvalId: string }, by: AdminActor): Promise<WriteResult> {
    const change = planChange(plan);
    const action = approvalAction(change.verb, change.object, change.content);
    if (!global.allTenants) {
      throw new BulkheadError("APPROVAL_REQUIRED", `all_tenants: a plan applies to every tenant on it; set all_tenants and an approval for '${action}'`, "all_tenants");
    }
    plan.limits.forEach((l, i) => {
      if (!this.deps.entitlements.meter(l.meter)) throw invalidArgument(`limits[${i}].meter`, `unknown meter '${l.meter}'`);
    });
    return runAdminCommand(this.deps.commands, this.kinds.putPlan, { plan, approvalId: global.approvalId }, by);
  }

  async putOverride(override: EntitlementOverride, by: AdminActor): Promise<WriteResult & { overrideId: number }> {
    // Refused before anything is appended; applying checks the expiry again against the command's time.
    requireWritableTenant(this.deps.directory, override.tenantId);
    requireFutureExpiry(override, this.deps.clock.now());
    return runAdminCommand(this.deps.commands, this.kinds.putOverride, { override }, by);
  }

  async removeOverride(tenantId: string, overrideId: number, by: AdminActor): Promise<WriteResult> {
    return runAdminCommand(this.deps.commands, this.kinds.removeOverride, { tenantId, overrideId }, by);
  }

  private applyPutPlan(plan: Plan, approvalId: string, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId: null, object: `plan:${plan.code}`, action: "plan.put" }, (tx) => {
      this.deps.approvals.spend(tx, approvalId, planChange(plan), by.caller.actor);
      this.deps.entitlements.putPlan(tx, plan);
    });
  }

  private applyPutOverride(override: EntitlementOverride, by: CommandActor): WriteResult & { overrideId: number } {
    const { tenantId } = override;
    const { revision, changed, result } = this.deps.audited.write(
      by,
      { tenantId, object: `entitlement:${tenantId}/${override.entitlement}`, action: `override.${override.effect}` },
      (tx) => {
        requireWritableTenant(this.deps.directory, tenantId);
        requireFutureExpiry(override, tx.now);
        return this.deps.entitlements.addOverride(tx, override);
      },
    );
    return { revision, changed, overrideId: result };
  }

  private applyRemoveOverride(tenantId: string, overrideId: number, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `override:${tenantId}/${overrideId}`, action: "override.remove" }, (tx) => {
      if (!this.deps.entitlements.removeOverride(tx, tenantId, overrideId)) {
        throw new BulkheadError("ADMIN_NOT_FOUND", `override_id: no override ${overrideId} in ${tenantId}`, "override_id");
      }
    });
  }
}

function requireFutureExpiry(override: EntitlementOverride, now: number): void {
  if (override.expiresAt !== null && override.expiresAt <= now) throw invalidArgument("expires_at", "is in the past");
}

/** What a plan write asks a second person to approve: the whole plan as it will be stored. */
export function planChange(plan: Plan): ApprovableChange {
  return { verb: "plan.put", object: plan.code, content: plan };
}
