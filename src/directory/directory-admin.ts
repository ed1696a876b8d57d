import { adminCommand, commandActor, type AdminActor, type AdminBody, type AuditedWriter, type CommandActor, type WriteResult } from "../audit/audited-write.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { CommandKind, CommandRegistry } from "../store/store-command.js";
import type { RoleCatalog } from "../context/role-catalog.js";
import { BulkheadError, invalidArgument } from "../errors.js";
import { approvalAction, type ApprovableChange, type Approvals } from "../identity/approvals.js";
import type { DirectoryStore, Membership, Tenant, User } from "./directory-store.js";

export type MembershipSpec = Pick<Membership, "actorId" | "actorType" | "role" | "status">;

/**
 * Users, memberships and custom roles as use cases: checked against the
 * store inside the transaction (tenant exists, role exists), written, and
 * audited in the same transaction by AuditedWriter.
 */
export class DirectoryAdmin {
  /** The writes this use case makes, as commands (ADR 42); the registry applies them from the log. */
  private readonly kinds;

  constructor(
    private readonly deps: {
      audited: AuditedWriter;
      directory: DirectoryStore;
      roles: RoleCatalog;
      approvals: Approvals;
      commands: CommandWriter;
      registry: CommandRegistry;
    },
  ) {
    const r = deps.registry;
    this.kinds = {
      putUser: r.register(adminCommand("user.put", (tx, b: { tenantId: string; user: User; global: { allTenants: boolean; approvalId: string } }, by) =>
        this.applyPutUser(tx, b.tenantId, b.user, b.global, by))),
      putMembership: r.register(adminCommand("membership.put", (tx, b: { tenantId: string; spec: MembershipSpec; builtIn: boolean }, by) =>
        this.applyPutMembership(b.tenantId, b.spec, b.builtIn, by))),
      removeMembership: r.register(adminCommand("membership.remove", (tx, b: { tenantId: string; actorId: string }, by) =>
        this.applyRemoveMembership(b.tenantId, b.actorId, by))),
      syncMemberships: r.register(adminCommand("memberships.sync", (tx, b: { tenantId: string; wanted: (MembershipSpec & { builtIn: boolean })[] }, by) =>
        this.applySyncMemberships(b.tenantId, b.wanted, by))),
      putCustomRole: r.register(adminCommand("custom_role.put", (tx, b: { tenantId: string; name: string; permissions: string[] }, by) =>
        this.applyPutCustomRole(b.tenantId, b.name, b.permissions, by))),
      deleteCustomRole: r.register(adminCommand("custom_role.delete", (tx, b: { tenantId: string; name: string }, by) =>
        this.applyDeleteCustomRole(b.tenantId, b.name, by))),
    };
  }

  /**
   * A user's profile. A user who belongs, or ever belonged, to other tenants
   * is shared state: changing it needs all_tenants and a second staff
   * member's approval. "Ever" is what the rule protects: the profile other
   * tenants have seen. Removing a membership for a moment does not make it
   * private again.
   */
  async putUser(tenantId: string, user: User, global: { allTenants: boolean; approvalId: string }, by: AdminActor): Promise<WriteResult> {
    return this.run(this.kinds.putUser, { tenantId, user, global }, by);
  }

  async putMembership(tenantId: string, spec: MembershipSpec, by: AdminActor): Promise<WriteResult> {
    return this.run(this.kinds.putMembership, { tenantId, spec, builtIn: this.isBuiltIn(spec.role) }, by);
  }

  async removeMembership(tenantId: string, actorId: string, by: AdminActor): Promise<WriteResult> {
    return this.run(this.kinds.removeMembership, { tenantId, actorId }, by);
  }

  /** Applies the difference between the store and `wanted` (the tenant's whole list) in one transaction. */
  async syncMemberships(tenantId: string, wanted: MembershipSpec[], by: AdminActor): Promise<WriteResult & SyncCounts> {
    const seen = new Set<string>();
    wanted.forEach((m, i) => {
      if (seen.has(m.actorId)) throw invalidArgument(`memberships[${i}].actor_id`, `'${m.actorId}' is listed twice`);
      seen.add(m.actorId);
    });
    const list = wanted.map((m) => ({ ...m, builtIn: this.isBuiltIn(m.role) }));
    return this.run(this.kinds.syncMemberships, { tenantId, wanted: list }, by);
  }

  /** A tenant's own role: a name that is not built in, with permissions the action catalog knows. */
  async putCustomRole(tenantId: string, name: string, permissions: string[], by: AdminActor): Promise<WriteResult> {
    if (this.deps.roles.permissionsOf(name) !== undefined) throw invalidArgument("name", `'${name}' is a built-in role`);
    const known = new Set(this.deps.roles.catalogPermissions());
    permissions.forEach((p, i) => {
      if (!known.has(p)) throw invalidArgument(`permissions[${i}]`, `unknown permission '${p}' (not in the action catalog)`);
    });
    return this.run(this.kinds.putCustomRole, { tenantId, name, permissions }, by);
  }

  /** Refused while members hold the role: removing it would silently strip their access. */
  async deleteCustomRole(tenantId: string, name: string, by: AdminActor): Promise<WriteResult> {
    return this.run(this.kinds.deleteCustomRole, { tenantId, name }, by);
  }

  /** The revision is the command's: a write that changed nothing answers with the revision it saw, as before commands. */
  private async run<B, R extends WriteResult>(kind: CommandKind<AdminBody<B>, R>, body: B, by: AdminActor): Promise<R> {
    const { result, revision } = await this.deps.commands.run(kind, { ...body, by: commandActor(by) });
    return { ...result, revision };
  }

  private applyPutUser(tx: WriteScope, tenantId: string, user: User, global: { allTenants: boolean; approvalId: string }, by: CommandActor): WriteResult {
    const target = { tenantId: global.allTenants ? null : tenantId, object: `user:${user.id}`, action: "user.put" };
    return this.deps.audited.write(by, target, (tx) => {
      this.requireTenant(tenantId);
      const current = this.deps.directory.user(user.id);
      if (current && current.email === user.email && current.displayName === user.displayName) return;
      const elsewhere = this.deps.directory.tenantsEverOf(user.id).filter((t) => t !== tenantId);
      if (elsewhere.length > 0) {
        const change = userChange(user);
        const action = approvalAction(change.verb, change.object, change.content);
        if (!global.allTenants) {
          throw new BulkheadError(
            "APPROVAL_REQUIRED",
            `all_tenants: user '${user.id}' belongs or belonged to ${elsewhere.length} other tenant(s); set all_tenants and an approval for '${action}'`,
            "all_tenants",
          );
        }
        this.deps.approvals.spend(tx, global.approvalId, change, by.caller.actor);
      }
      this.deps.directory.putUser(tx, user);
    });
  }

  private applyPutMembership(tenantId: string, spec: MembershipSpec, builtIn: boolean, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `membership:${tenantId}/${spec.actorId}`, action: "membership.put" }, (tx) => {
      this.requireTenant(tenantId);
      this.requireRole(tenantId, spec.role, builtIn, "membership.role");
      const current = this.deps.directory.membership(tenantId, spec.actorId);
      if (current && sameMembership(current, spec)) return;
      this.deps.directory.putMembership(tx, { tenantId, ...spec });
    });
  }

  private applyRemoveMembership(tenantId: string, actorId: string, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `membership:${tenantId}/${actorId}`, action: "membership.remove" }, (tx) => {
      this.requireTenant(tenantId);
      if (this.deps.directory.membership(tenantId, actorId)) this.deps.directory.removeMembership(tx, tenantId, actorId);
    });
  }

  private applySyncMemberships(tenantId: string, wanted: (MembershipSpec & { builtIn: boolean })[], by: CommandActor): WriteResult & SyncCounts {
    const counts = { added: 0, updated: 0, removed: 0 };
    const seen = new Set(wanted.map((m) => m.actorId));
    const result = this.deps.audited.write(by, { tenantId, object: `memberships:${tenantId}`, action: "memberships.sync" }, (tx) => {
      this.requireTenant(tenantId);
      wanted.forEach((m, i) => this.requireRole(tenantId, m.role, m.builtIn, `memberships[${i}].role`));
      const current = new Map(this.deps.directory.memberships(tenantId).map((m) => [m.actorId, m]));
      for (const { builtIn: _, ...m } of wanted) {
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
    return { revision: result.revision, changed: result.changed, ...counts };
  }

  private applyPutCustomRole(tenantId: string, name: string, permissions: string[], by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `role:${tenantId}/${name}`, action: "custom_role.put" }, (tx) => {
      this.requireTenant(tenantId);
      const current = this.deps.directory.customRole(tenantId, name);
      if (current && sameSet(current.permissions, permissions)) return;
      this.deps.directory.putCustomRole(tx, { tenantId, name, permissions: [...new Set(permissions)].sort() });
    });
  }

  private applyDeleteCustomRole(tenantId: string, name: string, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `role:${tenantId}/${name}`, action: "custom_role.delete" }, (tx) => {
      this.requireTenant(tenantId);
      if (!this.deps.directory.customRole(tenantId, name)) throw new BulkheadError("ADMIN_NOT_FOUND", `name: no custom role '${name}' in ${tenantId}`, "name");
      const holders = this.deps.directory.countRoleHolders(tenantId, name);
      if (holders > 0) throw new BulkheadError("ADMIN_CONFLICT", `name: ${holders} member(s) still hold '${name}'; change their role first`, "name");
      this.deps.directory.deleteCustomRole(tx, tenantId, name);
    });
  }

  private requireTenant(tenantId: string): void {
    requireWritableTenant(this.deps.directory, tenantId);
  }

  /** Whether a role is one of the policy bundle's: decided where the write is made, so applying it never reads the bundle. */
  private isBuiltIn(role: string): boolean {
    return this.deps.roles.permissionsOf(role) !== undefined;
  }

  private requireRole(tenantId: string, role: string, builtIn: boolean, field: string): void {
    if (!builtIn && !this.deps.directory.customRole(tenantId, role)) {
      throw invalidArgument(field, `unknown role '${role}' (not built in, not a custom role of this tenant)`);
    }
  }
}

type SyncCounts = { added: number; updated: number; removed: number };

/** A tenant admin writes may change: it exists and has not been deleted. */
export function requireWritableTenant(directory: DirectoryStore, tenantId: string): Tenant {
  const tenant = directory.tenantById(tenantId);
  if (!tenant) throw invalidArgument("tenant_id", `unknown tenant '${tenantId}'`);
  if (tenant.status === "deleted") throw new BulkheadError("ADMIN_CONFLICT", `tenant_id: tenant '${tenantId}' is deleted`, "tenant_id");
  return tenant;
}

function sameMembership(a: MembershipSpec, b: MembershipSpec): boolean {
  return a.role === b.role && a.status === b.status && a.actorType === b.actorType;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((x) => right.has(x));
}

/** What a shared user's profile write asks a second person to approve: the profile as it will be stored. */
export function userChange(user: User): ApprovableChange {
  return { verb: "user.put", object: user.id, content: user };
}
