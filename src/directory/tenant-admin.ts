import { adminCommand, commandActor, runAdminCommand, requireCapability, type AdminActor, type AuditedWriter, type CommandActor, type WriteResult } from "../audit/audited-write.js";
import type { AdminCapability, AdminCaller } from "../identity/staff-roles.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { CommandRegistry } from "../store/store-command.js";
import type { RoleCatalog } from "../context/role-catalog.js";
import type { EntitlementStore } from "../entitlements/entitlement-store.js";
import { BulkheadError, invalidArgument } from "../errors.js";
import type { ApiKeyStore } from "../identity/api-keys.js";
import type { ImpersonationStore } from "../identity/impersonation-store.js";
import type { DirectoryStore, Membership, Tenant } from "./directory-store.js";

export const SEARCH_LIMITS = { default: 20, max: 100 } as const;

/** A tenant created on this plan and billing status involves no billing decision. */
export const DEFAULT_PLAN_CODE = "free";

/**
 * Tenants as use cases. Changing a tenant's plan or billing status is a
 * billing change and needs `billing.write` on top of `tenants.write`; reads
 * return metadata only.
 */
export class TenantAdmin {
  /**
   * The writes as commands (ADR 75): a suspension or deletion made on one
   * sidecar is an entry every sidecar applies in order, with its audit row.
   */
  private readonly kinds;

  constructor(
    private readonly deps: {
      audited: AuditedWriter;
      directory: DirectoryStore;
      entitlements: EntitlementStore;
      apiKeys: ApiKeyStore;
      impersonations: ImpersonationStore;
      roles: RoleCatalog;
      commands: CommandWriter;
      registry: CommandRegistry;
    },
  ) {
    const r = deps.registry;
    this.kinds = {
      put: r.register(adminCommand("tenant.put", (_tx, b: { tenant: Tenant; grant: CallerGrant }, by) => this.applyPut(b.tenant, grantedCaller(b.grant), by))),
      // An audited access, not a change: a command so that in replicated mode every sidecar has the row.
      select: r.register(adminCommand("tenant.select", (_tx, b: { tenantId: string }, by) =>
        this.deps.audited.recordAccess(by, { tenantId: b.tenantId, object: `tenant:${b.tenantId}`, action: "tenant.select" }))),
      delete: r.register(adminCommand("tenant.delete", (_tx, b: { tenantId: string; confirmSlug: string }, by) => this.applyDelete(b.tenantId, b.confirmSlug, by))),
    };
  }

  /**
   * Creating a tenant or changing its other fields needs `tenants.write`;
   * its plan or billing status is a billing decision and needs
   * `billing.write`, also at creation unless the tenant starts free and
   * active. The directory-sync credential may set the plan at creation: the
   * host's sign-up flow is where a plan is first chosen.
   */
  async putTenant(tenant: Tenant, by: AdminActor): Promise<WriteResult> {
    if (this.deps.roles.billingAccessOf(tenant.billingStatus) === undefined) {
      throw invalidArgument("billing_status", `unknown billing status '${tenant.billingStatus}'`);
    }
    // Checked on this sidecar's view before anything is appended, so a refused write leaves no entry.
    this.checkPut(tenant, by.caller);
    return runAdminCommand(this.deps.commands, this.kinds.put, { tenant, grant: grantOf(by.caller) }, by);
  }

  /**
   * What a tenant write needs, against the state it would change: the same
   * checks run before the command is appended and again when it is applied
   * (the state may have moved in between). Returns false for a no-op.
   */
  private checkPut(tenant: Tenant, caller: Pick<AdminCaller, "kind" | "role" | "capabilities">): boolean {
    if (!this.deps.entitlements.plan(tenant.planCode)) throw invalidArgument("plan_code", `unknown plan '${tenant.planCode}'`);
    const known = this.deps.directory.tenantBySlug(tenant.slug);
    if (known && known.id !== tenant.id) throw invalidArgument("slug", `slug '${tenant.slug}' belongs to another tenant`);
    const current = this.deps.directory.tenantById(tenant.id);
    if (current?.status === "deleted") {
      throw new BulkheadError("ADMIN_CONFLICT", `tenant_id: tenant '${tenant.id}' was deleted and cannot be changed or brought back`, "tenant_id");
    }
    if (current && sameTenant(current, tenant)) return false;
    const billingChange = current
      ? current.planCode !== tenant.planCode || current.billingStatus !== tenant.billingStatus
      : caller.kind !== "sync" && (tenant.planCode !== DEFAULT_PLAN_CODE || tenant.billingStatus !== "active");
    if (billingChange) requireCapability(caller, "billing.write", "set a tenant's plan or billing status");
    if (!current || !sameTenant(current, { ...tenant, planCode: current.planCode, billingStatus: current.billingStatus })) {
      requireCapability(caller, "tenants.write", "create tenants or change their profile");
    }
    return true;
  }

  private applyPut(tenant: Tenant, caller: Pick<AdminCaller, "kind" | "role" | "capabilities">, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId: tenant.id, object: `tenant:${tenant.id}`, action: "tenant.put" }, (tx) => {
      if (this.checkPut(tenant, caller)) this.deps.directory.putTenant(tx, tenant);
    });
  }

  getTenant(tenantId: string): Tenant & { memberCount: number } {
    const tenant = this.deps.directory.tenantById(tenantId);
    if (!tenant) throw new BulkheadError("TENANT_NOT_FOUND", `tenant_id: no tenant '${tenantId}'`, "tenant_id");
    return { ...tenant, memberCount: this.deps.directory.countSeats(tenantId) };
  }

  /** Id, slug, plan and status only: enough to pick a tenant, nothing more. */
  searchTenants(prefix: string, limit: number): Pick<Tenant, "id" | "slug" | "status" | "planCode">[] {
    const capped = Math.min(limit || SEARCH_LIMITS.default, SEARCH_LIMITS.max);
    return this.deps.directory.searchTenants(prefix, capped).map(({ id, slug, status, planCode }) => ({ id, slug, status, planCode }));
  }

  /** A tenant's members and their roles (customer roles, never staff ones). */
  members(tenantId: string): Membership[] {
    this.getTenant(tenantId);
    return this.deps.directory.memberships(tenantId);
  }

  /**
   * Staff open one tenant's data only after saying why: the selection is
   * audited (tenant.select) before any of the tenant's data is shown.
   */
  async selectTenant(tenantId: string, by: AdminActor): Promise<Tenant & { memberCount: number }> {
    requireCapability(by.caller, "tenants.read", "open a tenant");
    const tenant = this.getTenant(tenantId);
    if (by.reason.trim() === "") throw invalidArgument("reason", "is required for every audited access");
    await this.deps.commands.run(this.kinds.select, { tenantId, by: commandActor(by) });
    return tenant;
  }

  /** The tenant's recent admin actions (who, what, why), newest first. */
  recentActions(tenantId: string, limit = 20) {
    return this.deps.audited.recent(tenantId, limit);
  }

  /**
   * The deletion workflow, one audited transaction: the tenant is marked
   * deleted (every Check denies from the next revision on), its API keys are
   * revoked and live impersonation sessions end. Rows stay for the audit
   * trail; a deleted tenant cannot be revived.
   */
  async deleteTenant(tenantId: string, confirmSlug: string, by: AdminActor): Promise<WriteResult & DeleteCounts> {
    this.checkDelete(tenantId, confirmSlug);
    return runAdminCommand(this.deps.commands, this.kinds.delete, { tenantId, confirmSlug }, by);
  }

  private checkDelete(tenantId: string, confirmSlug: string): Tenant & { memberCount: number } {
    const tenant = this.getTenant(tenantId);
    if (tenant.slug !== confirmSlug) throw invalidArgument("confirm_slug", `must repeat the tenant's slug to delete '${tenantId}'`);
    return tenant;
  }

  private applyDelete(tenantId: string, confirmSlug: string, by: CommandActor): WriteResult & DeleteCounts {
    const counts = { apiKeysRevoked: 0, impersonationsEnded: 0 };
    const result = this.deps.audited.write(by, { tenantId, object: `tenant:${tenantId}`, action: "tenant.delete" }, (tx) => {
      const tenant = this.checkDelete(tenantId, confirmSlug);
      if (tenant.status === "deleted") return;
      const { memberCount: _, ...row } = tenant;
      this.deps.directory.putTenant(tx, { ...row, status: "deleted" });
      counts.apiKeysRevoked = this.deps.apiKeys.revokeAll(tx, tenantId);
      counts.impersonationsEnded = this.deps.impersonations.endAllInTenant(tx, tenantId);
    });
    return { revision: result.revision, changed: result.changed, ...counts };
  }
}

type DeleteCounts = { apiKeysRevoked: number; impersonationsEnded: number };

/**
 * The caller's standing as a tenant command carries it. Which capability a
 * tenant write needs depends on the state it lands on (a billing change or
 * not), so the applying sidecar re-checks against what the caller held when
 * the command was made, not against its own token table.
 */
interface CallerGrant {
  kind: AdminCaller["kind"];
  role: AdminCaller["role"];
  capabilities: AdminCapability[];
}

function grantOf(caller: AdminCaller): CallerGrant {
  return { kind: caller.kind, role: caller.role, capabilities: [...caller.capabilities] };
}

function grantedCaller(grant: CallerGrant): Pick<AdminCaller, "kind" | "role" | "capabilities"> {
  return { kind: grant.kind, role: grant.role, capabilities: new Set(grant.capabilities) };
}

function sameTenant(a: Tenant, b: Tenant): boolean {
  return (
    a.slug === b.slug && a.name === b.name && a.status === b.status && a.planCode === b.planCode && a.billingStatus === b.billingStatus &&
    a.region === b.region && a.isolationTier === b.isolationTier && a.tags.join("\u0000") === b.tags.join("\u0000")
  );
}
