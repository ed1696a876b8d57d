import type { AuditAdmin } from "../audit/audit-admin.js";
import type { DecisionAccess } from "../audit/decision-access.js";
import type { BillingAdmin } from "../billing/billing-admin.js";
import type { EntitlementReport } from "../entitlements/entitlement-report.js";
import type { FleetView } from "../replication/fleet-status.js";
import type { Clock } from "../clock.js";
import type { FlagAdmin } from "../flags/flag-admin.js";
import type { TenantAdmin } from "../directory/tenant-admin.js";
import type { AccessAdmin } from "../identity/access-admin.js";
import type { AdminAuth } from "../identity/admin-auth.js";

/**
 * The console's collaborators: the same use-case objects AdminService is
 * built with (src/compose.ts builds them once), never the database. Page
 * groups added later (billing, flags, decisions) widen this bag.
 */
export interface ConsoleDeps {
  tenants: TenantAdmin;
  access: AccessAdmin;
  auth: AdminAuth;
  /** The audited decision-log query AdminService.QueryDecisions calls, and the Check playground (ADR 90). */
  decisionAccess: DecisionAccess;
  /** Each sidecar's policy and store revision (ADR 90); off the decision path. */
  fleet: () => Promise<FleetView>;
  flags: FlagAdmin;
  /** Replay, reconcile, recalculate and the event list, as AdminService calls them. */
  billing: BillingAdmin;
  /** What GetEntitlements answers (grants with sources, limits with usage), read in one snapshot. */
  entitlements: (tenantId: string, now: number) => EntitlementReport;
  audit: AuditAdmin;
  reasonCodes: readonly string[];
  clock: Clock;
  /** Set the cookie's Secure attribute (behind TLS); off for the plain-HTTP demo and tests. */
  secureCookies?: boolean;
}
