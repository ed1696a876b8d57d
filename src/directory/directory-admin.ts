import type { AdminAudit } from "../audit/admin-audit.js";
import type { RoleCatalog } from "../context/role-catalog.js";
import type { EntitlementStore } from "../entitlements/entitlement-store.js";
import { invalidArgument } from "../errors.js";
import type { RevisionWriter, WriteScope } from "../store/revision-writer.js";
import type { DirectoryStore, Membership, Tenant } from "./directory-store.js";

/** Who did it and why: every admin write carries both, and both land in admin_audit. */
export interface AdminActor {
  actor: string;
  reason: string;
  source: string;
}

export interface WriteResult {
  revision: number;
  changed: boolean;
}

export type MembershipSpec = Pick<Membership, "actorId" | "actorType" | "role" | "status">;

/**
 * Directory writes as use cases: validate against the store inside the
 * transaction (plan exists, role exists), write, audit in the same
 * transaction. A write that changes nothing commits nothing, audits nothing.
 */
export class DirectoryAdmin {
  constructor(
    private readonly deps: {
      writer: RevisionWriter;
      directory: DirectoryStore;
      entitlements: EntitlementStore;
      roles: RoleCatalog;
      audit: AdminAudit;
    },
  ) {}

  putTenant(tenant: Tenant, by: AdminActor): WriteResult {
    return this.write(by, tenant.id, `tenant:${tenant.id}`, "tenant.put", (tx) => {
      if (!this.deps.entitlements.plan(tenant.planCode)) throw invalidArgument("plan_code", `unknown plan '${tenant.planCode}'`);
      const known = this.deps.directory.tenantBySlug(tenant.slug);
      if (known && known.id !== tenant.id) throw invalidArgument("slug", `slug '${tenant.slug}' belongs to another tenant`);
      this.deps.directory.putTenant(tx, tenant);
    });
  }

  putMembership(tenantId: string, spec: MembershipSpec, by: AdminActor): WriteResult {
    return this.write(by, tenantId, `membership:${tenantId}/${spec.actorId}`, "membership.put", (tx) => {
      this.requireTenant(tenantId);
      this.requireRole(tenantId, spec.role, "membership.role");
      const current = this.deps.directory.membership(tenantId, spec.actorId);
      if (current && sameMembership(current, spec)) return;
      this.deps.directory.putMembership(tx, { tenantId, ...spec });
    });
  }

  removeMembership(tenantId: string, actorId: string, by: AdminActor): WriteResult {
    return this.write(by, tenantId, `membership:${tenantId}/${actorId}`, "membership.remove", (tx) => {
      this.requireTenant(tenantId);
      if (this.deps.directory.membership(tenantId, actorId)) this.deps.directory.removeMembership(tx, tenantId, actorId);
    });
  }

  /** Applies the difference between the store and `wanted` (the tenant's whole list) in one transaction. */
  syncMemberships(tenantId: string, wanted: MembershipSpec[], by: AdminActor): WriteResult & { added: number; updated: number; removed: number } {
    const counts = { added: 0, updated: 0, removed: 0 };
    const seen = new Set<string>();
    wanted.forEach((m, i) => {
      if (seen.has(m.actorId)) throw invalidArgument(`memberships[${i}].actor_id`, `'${m.actorId}' is listed twice`);
      seen.add(m.actorId);
    });
    const result = this.write(by, tenantId, `memberships:${tenantId}`, "memberships.sync", (tx) => {
      this.requireTenant(tenantId);
      wanted.forEach((m, i) => this.requireRole(tenantId, m.role, `memberships[${i}].role`));
      const current = new Map(this.deps.directory.memberships(tenantId).map((m) => [m.actorId, m]));
      for (const m of wanted) {
        const existing = current.get(m.actorId);
        if (!existing) counts.added++;
        else if (!sameMembership(existing, m)) counts.updated++;
        else continue;
        this.deps.directory.putMembership(tx, { tenantId, ...m });
      }
      for (const actorId of current.keys()) {
        if (seen.has(actorId)) continue;
        this.deps.directory.removeMembership(tx, tenantId, actorId);
        counts.removed++;
      }
    });
    return { ...result, ...counts };
  }

  private write(by: AdminActor, tenantId: string, object: string, action: string, mutate: (tx: WriteScope) => void): WriteResult {
    if (by.reason.trim() === "") throw invalidArgument("reason", "is required for every admin write");
    let changed = false;
    const { revision } = this.deps.writer.write((tx) => {
      mutate(trackingScope(tx, () => (changed = true)));
      if (changed) this.deps.audit.record(tx, { actor: by.actor, tenantId, object, action, reason: by.reason, source: by.source, result: "ok" });
    });
    return { revision, changed };
  }

  private requireTenant(tenantId: string): void {
    if (!this.deps.directory.tenantById(tenantId)) throw invalidArgument("tenant_id", `unknown tenant '${tenantId}'`);
  }

  private requireRole(tenantId: string, role: string, field: string): void {
    if (this.deps.roles.permissionsOf(role) === undefined && !this.deps.directory.customRole(tenantId, role)) {
      throw invalidArgument(field, `unknown role '${role}' (not built in, not a custom role of this tenant)`);
    }
  }
}

function sameMembership(a: MembershipSpec, b: MembershipSpec): boolean {
  return a.role === b.role && a.status === b.status && a.actorType === b.actorType;
}

/** Passes writes through and notes that one happened, so no-op admin calls audit nothing. */
function trackingScope(tx: WriteScope, onChange: () => void): WriteScope {
  return {
    now: tx.now,
    revision: tx.revision,
    changed: (tenantId, kind) => {
      onChange();
      tx.changed(tenantId, kind);
    },
    noted: (kind) => tx.noted(kind),
  };
}
