import type { WriteScope } from "../store/revision-writer.js";

export const TENANT_STATUSES = ["active", "suspended", "deleted"] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

export const MEMBER_ACTOR_TYPES = ["user", "service_account"] as const;
export type MemberActorType = (typeof MEMBER_ACTOR_TYPES)[number];

export const MEMBERSHIP_STATUSES = ["active", "suspended", "invited"] as const;
export type MembershipStatus = (typeof MEMBERSHIP_STATUSES)[number];

export interface Tenant {
  id: string;
  slug: string;
  name: string;
  status: TenantStatus;
  planCode: string;
  billingStatus: string;
  region: string;
  isolationTier: string;
  tags: string[];
}

export interface User {
  id: string;
  email: string;
  displayName: string;
}

export interface Membership {
  tenantId: string;
  actorId: string;
  actorType: MemberActorType;
  role: string;
  status: MembershipStatus;
}

export interface CustomRole {
  tenantId: string;
  name: string;
  permissions: string[];
}

/** Tenants, users, memberships and per-tenant custom roles. */
export interface DirectoryStore {
  tenantById(id: string): Tenant | undefined;
  tenantBySlug(slug: string): Tenant | undefined;
  membership(tenantId: string, actorId: string): Membership | undefined;
  memberships(tenantId: string): Membership[];
  customRole(tenantId: string, name: string): CustomRole | undefined;
  /** Seats taken: active members plus pending invites. */
  countSeats(tenantId: string): number;
  /** Tenants whose id or slug starts with `prefix`, by id. */
  searchTenants(prefix: string, limit: number): Tenant[];
  user(id: string): User | undefined;
  /** Every tenant the actor is or ever was a member of (removed memberships included). */
  tenantsEverOf(actorId: string): string[];
  countRoleHolders(tenantId: string, role: string): number;

  putTenant(tx: WriteScope, tenant: Tenant): void;
  putUser(tx: WriteScope, user: User): void;
  putMembership(tx: WriteScope, membership: Membership): void;
  removeMembership(tx: WriteScope, tenantId: string, actorId: string): boolean;
  putCustomRole(tx: WriteScope, role: CustomRole): void;
  deleteCustomRole(tx: WriteScope, tenantId: string, name: string): boolean;
}
