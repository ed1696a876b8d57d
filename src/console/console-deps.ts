import type { AuditAdmin } from "../audit/audit-admin.js";
import type { DecisionFilter, DecisionPage } from "../audit/decision-query.js";
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
  audit: AuditAdmin;
  reasonCodes: readonly string[];
  clock: Clock;
  /** Set the cookie's Secure attribute (behind TLS); off for the plain-HTTP demo and tests. */
  secureCookies?: boolean;
}
