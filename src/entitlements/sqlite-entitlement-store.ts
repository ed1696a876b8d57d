import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type {
  Addon,
  EntitlementOverride,
  EntitlementStore,
  LimitOverride,
  LimitValues,
  Meter,
  Plan,
  Stored,
  TenantAddon,
} from "./entitlement-store.js";

export class SqliteEntitlementStore implements EntitlementStore {
  private readonly stmt;

  constructor(db: Db) {
    const overrideColumns = "id, tenant_id AS tenantId, reason, author, expires_at AS expiresAt";
    this.stmt = {
      meter: db.prepare<[string], Meter>("SELECT name, kind, reset, description FROM meters WHERE name = ?"),
      plan: db.prepare<[string], { code: string; name: string }>("SELECT code, name FROM plans WHERE code = ?"),
      planEntitlements: db
        .prepare<[string], string>("SELECT entitlement FROM plan_entitlements WHERE plan_code = ? ORDER BY entitlement")
        .pluck(),
      planLimits: db.prepare<[string], LimitValues>("SELECT meter, soft, hard FROM plan_limits WHERE plan_code = ? ORDER BY meter"),
      tenantAddons: db.prepare<[string], { code: string; name: string; quantity: number }>(
        `SELECT a.code, a.name, t.quantity FROM tenant_addons t JOIN addons a ON a.code = t.addon_code
          WHERE t.tenant_id = ? ORDER BY a.code`,
      ),
      hasAddon: db.prepare<[string], number>("SELECT count(*) FROM addons WHERE code = ?").pluck(),
      addonEntitlements: db
        .prepare<[string], string>("SELECT entitlement FROM addon_entitlements WHERE addon_code = ? ORDER BY entitlement")
        .pluck(),
      addonLimits: db.prepare<[string], LimitValues>("SELECT meter, soft, hard FROM addon_limits WHERE addon_code = ? ORDER BY meter"),
      overrides: db.prepare<[string], Stored<EntitlementOverride>>(
        `SELECT ${overrideColumns}, entitlement, effect FROM entitlement_overrides WHERE tenant_id = ? ORDER BY id`,
      ),
      limitOverrides: db.prepare<[string], Stored<LimitOverride>>(
        `SELECT ${overrideColumns}, meter, soft, hard FROM limit_overrides WHERE tenant_id = ? ORDER BY id`,
      ),
      putMeter: db.prepare(
        `INSERT INTO meters (name, kind, reset, description) VALUES (@name, @kind, @reset, @description)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, reset = excluded.reset, description = excluded.description`,
      ),
      putPlan: db.prepare(
        "INSERT INTO plans (code, name, created_at) VALUES (?, ?, ?) ON CONFLICT (code) DO UPDATE SET name = excluded.name",
      ),
      clearPlan: [
        db.prepare("DELETE FROM plan_entitlements WHERE plan_code = ?"),
        db.prepare("DELETE FROM plan_limits WHERE plan_code = ?"),
      ],
      addPlanEntitlement: db.prepare("INSERT INTO plan_entitlements (plan_code, entitlement) VALUES (?, ?)"),
      addPlanLimit: db.prepare("INSERT INTO plan_limits (plan_code, meter, soft, hard) VALUES (@owner, @meter, @soft, @hard)"),
      putAddon: db.prepare(
        "INSERT INTO addons (code, name, created_at) VALUES (?, ?, ?) ON CONFLICT (code) DO UPDATE SET name = excluded.name",
      ),
      clearAddon: [
        db.prepare("DELETE FROM addon_entitlements WHERE addon_code = ?"),
        db.prepare("DELETE FROM addon_limits WHERE addon_code = ?"),
      ],
      addAddonEntitlement: db.prepare("INSERT INTO addon_entitlements (addon_code, entitlement) VALUES (?, ?)"),
      addAddonLimit: db.prepare("INSERT INTO addon_limits (addon_code, meter, soft, hard) VALUES (@owner, @meter, @soft, @hard)"),
      setTenantAddon: db.prepare(
        `INSERT INTO tenant_addons (tenant_id, addon_code, quantity) VALUES (?, ?, ?)
         ON CONFLICT (tenant_id, addon_code) DO UPDATE SET quantity = excluded.quantity`,
      ),
      removeTenantAddon: db.prepare("DELETE FROM tenant_addons WHERE tenant_id = ? AND addon_code = ?"),
      addOverride: db.prepare(
        `INSERT INTO entitlement_overrides (tenant_id, entitlement, effect, reason, author, expires_at, created_at)
         VALUES (@tenantId, @entitlement, @effect, @reason, @author, @expiresAt, @now)`,
      ),
      removeOverride: db.prepare("DELETE FROM entitlement_overrides WHERE id = ? AND tenant_id = ?"),
      addLimitOverride: db.prepare(
        `INSERT INTO limit_overrides (tenant_id, meter, soft, hard, reason, author, expires_at, created_at)
         VALUES (@tenantId, @meter, @soft, @hard, @reason, @author, @expiresAt, @now)`,
      ),
    };
  }

  meter(name: string): Meter | undefined {
    return this.stmt.meter.get(name);
  }

  plan(code: string): Plan | undefined {
    const row = this.stmt.plan.get(code);
    if (!row) return undefined;
    return { ...row, entitlements: this.stmt.planEntitlements.all(code), limits: this.stmt.planLimits.all(code) };
  }

  tenantAddons(tenantId: string): TenantAddon[] {
    return this.stmt.tenantAddons.all(tenantId).map((row) => ({
      quantity: row.quantity,
      addon: {
        code: row.code,
        name: row.name,
        entitlements: this.stmt.addonEntitlements.all(row.code),
        limits: this.stmt.addonLimits.all(row.code),
      },
    }));
  }

  hasAddon(code: string): boolean {
    return this.stmt.hasAddon.get(code)! > 0;
  }

  overrides(tenantId: string): Stored<EntitlementOverride>[] {
    return this.stmt.overrides.all(tenantId);
  }

  limitOverrides(tenantId: string): Stored<LimitOverride>[] {
    return this.stmt.limitOverrides.all(tenantId);
  }

  putMeter(tx: WriteScope, meter: Meter): void {
    this.stmt.putMeter.run(meter);
    tx.changed(null, "meter");
  }

  /** Replaces the plan's entitlements and limits as a whole. */
  putPlan(tx: WriteScope, plan: Plan): void {
    this.stmt.putPlan.run(plan.code, plan.name, tx.now);
    for (const clear of this.stmt.clearPlan) clear.run(plan.code);
    for (const entitlement of plan.entitlements) this.stmt.addPlanEntitlement.run(plan.code, entitlement);
    for (const limit of plan.limits) this.stmt.addPlanLimit.run({ owner: plan.code, ...limit });
    tx.changed(null, "plan");
  }

  /** Replaces the add-on's entitlements and per-unit limits as a whole. */
  putAddon(tx: WriteScope, addon: Addon): void {
    this.stmt.putAddon.run(addon.code, addon.name, tx.now);
    for (const clear of this.stmt.clearAddon) clear.run(addon.code);
    for (const entitlement of addon.entitlements) this.stmt.addAddonEntitlement.run(addon.code, entitlement);
    for (const limit of addon.limits) this.stmt.addAddonLimit.run({ owner: addon.code, ...limit });
    tx.changed(null, "addon");
  }

  /** Quantity 0 removes the add-on from the tenant. */
  setTenantAddon(tx: WriteScope, tenantId: string, addonCode: string, quantity: number): void {
    if (quantity === 0) this.stmt.removeTenantAddon.run(tenantId, addonCode);
    else this.stmt.setTenantAddon.run(tenantId, addonCode, quantity);
    tx.changed(tenantId, "addon");
  }

  addOverride(tx: WriteScope, override: EntitlementOverride): number {
    const id = Number(this.stmt.addOverride.run({ ...override, now: tx.now }).lastInsertRowid);
    tx.changed(override.tenantId, "entitlement_override");
    return id;
  }

  removeOverride(tx: WriteScope, tenantId: string, id: number): boolean {
    const removed = this.stmt.removeOverride.run(id, tenantId).changes > 0;
    if (removed) tx.changed(tenantId, "entitlement_override");
    return removed;
  }

  addLimitOverride(tx: WriteScope, override: LimitOverride): void {
    this.stmt.addLimitOverride.run({ ...override, now: tx.now });
    tx.changed(override.tenantId, "limit_override");
  }
}
