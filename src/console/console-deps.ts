import type { DecisionFilter, DecisionPage } from "../audit/decision-query.js";
import type { BillingAdmin } from "../billing/billing-admin.js";
import type { EntitlementReport } from "../entitlements/entitlement-report.js";
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
  /** The decision-log query AdminService.QueryDecisions calls (flushes the log first). */
  decisions: (filter: DecisionFilter, page: { size: number; token: string }) => DecisionPage;
  flags: FlagAdmin;
  /** Replay, reconcile, recalculate and the event list, as AdminService calls them. */
  billing: BillingAdmin;
  /** What GetEntitlements answers (grants with sources, limits with usage), read in one snapshot. */
  entitlements: (tenantId: string, now: number) => EntitlementReport;
  reasonCodes: readonly string[];
  clock: Clock;
  /** Set the cookie's Secure attribute (behind TLS); off for the plain-HTTP demo and tests. */
  secureCookies?: boolean;
}
