/**
 * Built-in role -> permissions, from the active policy bundle
 * (policies/bulkhead/roles/data.json), so the roles the policy sees and the
 * permissions ResolveContext reports come from one file.
 */
export interface RoleCatalog {
  permissionsOf(role: string): readonly string[] | undefined;
  /** Every permission some catalog action needs: what a custom role or an API key may be granted. */
  catalogPermissions(): readonly string[];
  /** The bundle's default billing status -> access mapping (policies/bulkhead/billing_access/data.json). */
  billingAccessOf(status: string): string | undefined;
  /** Changes whenever the catalog may have changed (the policy revision). */
  readonly revision: string;
}
