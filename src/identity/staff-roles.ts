/**
 * Who may do what through AdminService. Staff roles are internal to the
 * operator of the sidecar and entirely separate from customer roles
 * (policies/bulkhead/roles/data.json): a support agent is never a member of a tenant.
 * The directory-sync credential and the bootstrap token are callers too,
 * with their own fixed capability sets.
 */
export const STAFF_ROLES = ["support_agent", "support_admin", "finance", "engineer"] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];

export const ADMIN_CAPABILITIES = [
  "tenants.read", // GetTenant, SearchTenants, ListApiKeys
  "tenants.write", // PutTenant (status, region, isolation tier, tags)
  "tenants.delete", // DeleteTenant
  "billing.write", // a tenant's plan or billing status, entitlement overrides
  "plans.write", // the plan catalog (global: needs all_tenants and an approver)
  "directory.write", // users, memberships, custom roles
  "api_keys.write",
  "impersonate",
  "changes.watch",
  "approvals", // request and give second approvals
  "staff.write",
  "flags.write", // PutFlag, DeleteFlag, ListFlags
  "flags.kill", // SetKillSwitch alone, without a second approver (the on-call engineer)
  "audit.read", // QueryDecisions: one tenant's decision log
  "break_glass", // BreakGlass: open, alone, a one-use emergency approval for one exact change (ADR 54)
] as const;
export type AdminCapability = (typeof ADMIN_CAPABILITIES)[number];

const STAFF_CAPABILITIES: Record<StaffRole, readonly AdminCapability[]> = {
  // Helps customers: reads metadata, may look through a member's eyes (read-only, see policies/bulkhead/staff_roles/data.json).
  support_agent: ["tenants.read", "impersonate"],
  // Fixes a tenant's directory and keys; cannot touch billing. The admin
  // role: the only one that may break glass (for the writes it may make,
  // i.e. a shared user profile), see ADR 54.
  support_admin: [
    "tenants.read", "tenants.write", "tenants.delete", "directory.write", "api_keys.write", "impersonate", "changes.watch", "approvals", "audit.read", "break_glass",
  ],
  // Billing corrections and the plan catalog; no directory writes.
  finance: ["tenants.read", "billing.write", "plans.write", "approvals"],
  // Operates the sidecar: reads and watches, approves; owns flags, and may
  // throw a kill switch alone when on call. A high-risk flag to 100% still
  // needs a second engineer's approval (src/flags/flag-admin.ts).
  engineer: ["tenants.read", "changes.watch", "approvals", "flags.write", "flags.kill", "audit.read"],
};

/** The host's directory sync: keeps tenants, users, memberships and custom roles current. */
const SYNC_CAPABILITIES: readonly AdminCapability[] = ["tenants.write", "directory.write", "changes.watch"];

export interface AdminCaller {
  /** Audited as the actor: `staff:<id>`, `sync` or `bootstrap` (plus a named operator for shared credentials). */
  actor: string;
  kind: "bootstrap" | "sync" | "staff";
  /** The staff id, for impersonation sessions and approvals; "" for shared credentials. */
  staffId: string;
  role: StaffRole | null;
  capabilities: ReadonlySet<AdminCapability>;
}

export function roleMay(role: StaffRole, capability: AdminCapability): boolean {
  return STAFF_CAPABILITIES[role].includes(capability);
}

export function staffCaller(staffId: string, role: StaffRole): AdminCaller {
  return { actor: `staff:${staffId}`, kind: "staff", staffId, role, capabilities: new Set(STAFF_CAPABILITIES[role]) };
}

export function syncCaller(operator: string): AdminCaller {
  return { actor: operator ? `sync:${operator}` : "sync", kind: "sync", staffId: "", role: null, capabilities: new Set(SYNC_CAPABILITIES) };
}

/** The bootstrap token sets up staff and can do everything, but is still bound by reasons, tenants and approvals. */
export function bootstrapCaller(operator: string): AdminCaller {
  return { actor: operator ? `bootstrap:${operator}` : "bootstrap", kind: "bootstrap", staffId: "", role: null, capabilities: new Set(ADMIN_CAPABILITIES) };
}
