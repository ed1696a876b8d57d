/**
 * Built-in role -> permissions, from the active policy bundle
 * (policies/data/roles.json), so the roles the policy sees and the
 * permissions ResolveContext reports come from one file.
 */
export interface RoleCatalog {
  permissionsOf(role: string): readonly string[] | undefined;
  /** Changes whenever the catalog may have changed (the policy revision). */
  readonly revision: string;
}
