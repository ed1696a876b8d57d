import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { EntitlementOverride, EntitlementStore, Plan, PlanLimit } from "./entitlement-store.js";

export class SqliteEntitlementStore implements EntitlementStore {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = {
      plan: db.prepare<[string], { code: string; name: string }>("SELECT code, name FROM plans WHERE code = ?"),
      planEntitlements: db
        .prepare<[string], string>("SELECT entitlement FROM plan_entitlements WHERE plan_code = ? ORDER BY entitlement")
        .pluck(),
      planLimits: db.prepare<[string], PlanLimit>(
        "SELECT meter, soft, hard, reset FROM plan_limits WHERE plan_code = ? ORDER BY meter",
      ),
      overrides: db.prepare<[string], EntitlementOverride>(
        `SELECT tenant_id AS tenantId, entitlement, effect, reason, author, expires_at AS expiresAt
           FROM entitlement_overrides WHERE tenant_id = ? ORDER BY id`,
      ),
      usage: db
        .prepare<[string, string, number], number>(
          "SELECT used FROM usage_counters WHERE tenant_id = ? AND meter = ? AND window_start = ?",
        )
        .pluck(),
      putPlan: db.prepare(
        "INSERT INTO plans (code, name, created_at) VALUES (?, ?, ?) ON CONFLICT (code) DO UPDATE SET name = excluded.name",
      ),
      clearPlanEntitlements: db.prepare("DELETE FROM plan_entitlements WHERE plan_code = ?"),
      clearPlanLimits: db.prepare("DELETE FROM plan_limits WHERE plan_code = ?"),
      addPlanEntitlement: db.prepare("INSERT INTO plan_entitlements (plan_code, entitlement) VALUES (?, ?)"),
      addPlanLimit: db.prepare(
        "INSERT INTO plan_limits (plan_code, meter, soft, hard, reset) VALUES (@planCode, @meter, @soft, @hard, @reset)",
      ),
      addOverride: db.prepare(
        `INSERT INTO entitlement_overrides (tenant_id, entitlement, effect, reason, author, expires_at, created_at)
         VALUES (@tenantId, @entitlement, @effect, @reason, @author, @expiresAt, @now)`,
      ),
      setUsage: db.prepare(
        `INSERT INTO usage_counters (tenant_id, meter, window_start, used) VALUES (?, ?, ?, ?)
         ON CONFLICT (tenant_id, meter, window_start) DO UPDATE SET used = excluded.used`,
      ),
    };
  }

  plan(code: string): Plan | undefined {
    const row = this.stmt.plan.get(code);
    if (!row) return undefined;
    return { ...row, entitlements: this.stmt.planEntitlements.all(code), limits: this.stmt.planLimits.all(code) };
  }

  overrides(tenantId: string): EntitlementOverride[] {
    return this.stmt.overrides.all(tenantId);
  }

  usage(tenantId: string, meter: string, windowStart: number): number {
    return this.stmt.usage.get(tenantId, meter, windowStart) ?? 0;
  }

  /** Replaces the plan's entitlements and limits as a whole. */
  putPlan(tx: WriteScope, plan: Plan): void {
    this.stmt.putPlan.run(plan.code, plan.name, tx.now);
    this.stmt.clearPlanEntitlements.run(plan.code);
    this.stmt.clearPlanLimits.run(plan.code);
    for (const entitlement of plan.entitlements) this.stmt.addPlanEntitlement.run(plan.code, entitlement);
    for (const limit of plan.limits) this.stmt.addPlanLimit.run({ planCode: plan.code, ...limit });
    tx.changed(null, "plan");
  }

  addOverride(tx: WriteScope, override: EntitlementOverride): void {
    this.stmt.addOverride.run({ ...override, now: tx.now });
    tx.changed(override.tenantId, "entitlement_override");
  }

  setUsage(tx: WriteScope, tenantId: string, meter: string, windowStart: number, used: number): void {
    this.stmt.setUsage.run(tenantId, meter, windowStart, used);
    tx.changed(tenantId, "usage");
  }
}
