import type { RoleCatalog } from "../context/role-catalog.js";
import type { PolicySet } from "./policy-set.js";

/** Where decisions get their current policy: the hot-reloading PolicyManager, or one fixed set (xtest, policy diff). */
export interface PolicySource extends RoleCatalog {
  readonly policy: PolicySet;
}

export function fixedPolicy(set: PolicySet): PolicySource {
  return {
    policy: set,
    revision: set.revision,
    permissionsOf: (role) => set.permissionsOf(role),
    catalogPermissions: () => set.catalogPermissions(),
    billingAccessOf: (status) => set.billingAccessOf(status),
  };
}
