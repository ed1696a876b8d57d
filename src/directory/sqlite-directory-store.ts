import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { CustomRole, DirectoryStore, Membership, Tenant, User } from "./directory-store.js";

interface TenantRow {
  id: string;
  slug: string;
  name: string;
  status: Tenant["status"];
  plan_code: string;
  billing_status: string;
  region: string;
  isolation_tier: string;
  tags: string;
}

const toTenant = (r: TenantRow): Tenant => ({
  id: r.id,
  slug: r.slug,
  name: r.name,
  status: r.status,
  planCode: r.plan_code,
  billingStatus: r.billing_status,
  region: r.region,
  isolationTier: r.isolation_tier,
  tags: JSON.parse(r.tags) as string[],
});

export class SqliteDirectoryStore implements DirectoryStore {
  private readonly stmt;

  constructor(db: Db) {
    const tenantColumns = "id, slug, name, status, plan_code, billing_status, region, isolation_tier, tags";
    this.stmt = {
      tenantById: db.prepare<[string], TenantRow>(`SELECT ${tenantColumns} FROM tenants WHERE id = ?`),
      tenantBySlug: db.prepare<[string], TenantRow>(`SELECT ${tenantColumns} FROM tenants WHERE slug = ?`),
      membership: db.prepare<[string, string], Membership>(
        `SELECT tenant_id AS tenantId, actor_id AS actorId, actor_type AS actorType, role, status
           FROM memberships WHERE tenant_id = ? AND actor_id = ?`,
      ),
      memberships: db.prepare<[string], Membership>(
        `SELECT tenant_id AS tenantId, actor_id AS actorId, actor_type AS actorType, role, status
           FROM memberships WHERE tenant_id = ? ORDER BY actor_id`,
      ),
      customRole: db.prepare<[string, string], { permissions: string }>(
        "SELECT permissions FROM custom_roles WHERE tenant_id = ? AND name = ?",
      ),
      countSeats: db
        // A counter the memberships triggers keep (migration 7): constant time whatever the tenant's size.
        .prepare<[string], number>("SELECT coalesce((SELECT seats FROM tenant_seats WHERE tenant_id = ?), 0)")
        .pluck(),
      // Prefix match as a range, so both lookups use their unique indexes.
      searchTenants: db.prepare<[{ prefix: string; limit: number }], TenantRow>(
        `SELECT ${tenantColumns} FROM tenants WHERE id >= @prefix AND id < @prefix || char(0x10FFFF)
         UNION SELECT ${tenantColumns} FROM tenants WHERE slug >= @prefix AND slug < @prefix || char(0x10FFFF)
         ORDER BY id LIMIT @limit`,
      ),
      user: db.prepare<[string], User>("SELECT id, email, display_name AS displayName FROM users WHERE id = ?"),
      tenantsEverOf: db.prepare<[string], string>("SELECT tenant_id FROM membership_history WHERE actor_id = ? ORDER BY tenant_id").pluck(),
      roleHolders: db.prepare<[string, string], number>("SELECT count(*) FROM memberships WHERE tenant_id = ? AND role = ?").pluck(),
      deleteCustomRole: db.prepare("DELETE FROM custom_roles WHERE tenant_id = ? AND name = ?"),
      putTenant: db.prepare(
        `INSERT INTO tenants (id, slug, name, status, plan_code, billing_status, region, isolation_tier, tags, created_at, updated_at)
         VALUES (@id, @slug, @name, @status, @planCode, @billingStatus, @region, @isolationTier, @tags, @now, @now)
         ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, name = excluded.name, status = excluded.status,
           plan_code = excluded.plan_code, billing_status = excluded.billing_status, region = excluded.region,
           isolation_tier = excluded.isolation_tier, tags = excluded.tags, updated_at = excluded.updated_at`,
      ),
      putUser: db.prepare(
        `INSERT INTO users (id, email, display_name, created_at) VALUES (@id, @email, @displayName, @now)
         ON CONFLICT (id) DO UPDATE SET email = excluded.email, display_name = excluded.display_name`,
      ),
      putMembership: db.prepare(
        `INSERT INTO memberships (tenant_id, actor_id, actor_type, role, status, created_at, updated_at)
         VALUES (@tenantId, @actorId, @actorType, @role, @status, @now, @now)
         ON CONFLICT (tenant_id, actor_id) DO UPDATE SET actor_type = excluded.actor_type, role = excluded.role,
           status = excluded.status, updated_at = excluded.updated_at`,
      ),
      removeMembership: db.prepare("DELETE FROM memberships WHERE tenant_id = ? AND actor_id = ?"),
      putCustomRole: db.prepare(
        `INSERT INTO custom_roles (tenant_id, name, permissions) VALUES (?, ?, ?)
         ON CONFLICT (tenant_id, name) DO UPDATE SET permissions = excluded.permissions`,
      ),
    };
  }

  tenantById(id: string): Tenant | undefined {
    const row = this.stmt.tenantById.get(id);
    return row && toTenant(row);
  }

  tenantBySlug(slug: string): Tenant | undefined {
    const row = this.stmt.tenantBySlug.get(slug);
    return row && toTenant(row);
  }

  membership(tenantId: string, actorId: string): Membership | undefined {
    return this.stmt.membership.get(tenantId, actorId);
  }

  memberships(tenantId: string): Membership[] {
    return this.stmt.memberships.all(tenantId);
  }

  customRole(tenantId: string, name: string): CustomRole | undefined {
    const row = this.stmt.customRole.get(tenantId, name);
    return row && { tenantId, name, permissions: JSON.parse(row.permissions) as string[] };
  }

  countSeats(tenantId: string): number {
    return this.stmt.countSeats.get(tenantId)!;
  }

  /** Tenants whose id or slug starts with `prefix`, by id. */
  searchTenants(prefix: string, limit: number): Tenant[] {
    return this.stmt.searchTenants.all({ prefix, limit }).map(toTenant);
  }

  user(id: string): User | undefined {
    return this.stmt.user.get(id);
  }

  tenantsEverOf(actorId: string): string[] {
    return this.stmt.tenantsEverOf.all(actorId);
  }

  countRoleHolders(tenantId: string, role: string): number {
    return this.stmt.roleHolders.get(tenantId, role)!;
  }

  putTenant(tx: WriteScope, tenant: Tenant): void {
    this.stmt.putTenant.run({ ...tenant, tags: JSON.stringify(tenant.tags), now: tx.now });
    tx.changed(tenant.id, "tenant");
  }

  putUser(tx: WriteScope, user: User): void {
    this.stmt.putUser.run({ ...user, now: tx.now });
    // A user row carries no access by itself (memberships do), so it expires no cached decision.
    tx.noted("user");
  }

  putMembership(tx: WriteScope, membership: Membership): void {
    this.stmt.putMembership.run({ ...membership, now: tx.now });
    tx.changed(membership.tenantId, "membership");
  }

  removeMembership(tx: WriteScope, tenantId: string, actorId: string): boolean {
    const removed = this.stmt.removeMembership.run(tenantId, actorId).changes > 0;
    tx.changed(tenantId, "membership");
    return removed;
  }

  putCustomRole(tx: WriteScope, role: CustomRole): void {
    this.stmt.putCustomRole.run(role.tenantId, role.name, JSON.stringify(role.permissions));
    tx.changed(role.tenantId, "custom_role");
  }

  deleteCustomRole(tx: WriteScope, tenantId: string, name: string): boolean {
    const deleted = this.stmt.deleteCustomRole.run(tenantId, name).changes > 0;
    if (deleted) tx.changed(tenantId, "custom_role");
    return deleted;
  }
}
