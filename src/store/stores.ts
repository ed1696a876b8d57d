import type { DirectoryStore } from "../directory/directory-store.js";
import { SqliteDirectoryStore } from "../directory/sqlite-directory-store.js";
import type { EntitlementStore } from "../entitlements/entitlement-store.js";
import { SqliteEntitlementStore } from "../entitlements/sqlite-entitlement-store.js";
import type { FlagStore } from "../flags/flag-store.js";
import { SqliteFlagStore } from "../flags/sqlite-flag-store.js";
import type { UsageStore } from "../usage/usage-store.js";
import { SqliteUsageStore } from "../usage/sqlite-usage-store.js";
import { SqliteBillingStore } from "../billing/billing-store.js";
import { ImpersonationStore } from "../identity/impersonation-store.js";
import { StaffStore } from "../identity/staff-store.js";
import type { Db } from "./database.js";

/** Every store over one database; created in one place (compose.ts, tests). */
export interface Stores {
  directory: DirectoryStore;
  entitlements: EntitlementStore;
  flags: FlagStore;
  usage: UsageStore;
  billing: SqliteBillingStore;
  staff: StaffStore;
  impersonations: ImpersonationStore;
}

export function createSqliteStores(db: Db): Stores {
  return {
    directory: new SqliteDirectoryStore(db),
    entitlements: new SqliteEntitlementStore(db),
    flags: new SqliteFlagStore(db),
    usage: new SqliteUsageStore(db),
    billing: new SqliteBillingStore(db),
    staff: new StaffStore(db),
    impersonations: new ImpersonationStore(db),
  };
}
