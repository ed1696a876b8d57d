/**
 * What {@link createTenantRepo} asks of a database. The repository decides
 * what may run (the tenant condition, the tenant id on inserts, the check of
 * every row that comes back); a driver only turns those requests into its
 * database's statements. `bulkhead/client/sqlite` has one for better-sqlite3.
 *
 * Drivers are synchronous, like better-sqlite3: the repository runs a write
 * and the check of its rows inside one {@link TenantRepoDriver.transaction},
 * so a row that fails the check is rolled back, not just reported.
 */
export interface TenantRepoDriver {
  /** Rows of `table` matching `filter`, with `table.columns`. */
  select(table: DriverTable, filter: ScopedFilter, options: SelectOptions): Record<string, unknown>[];
  /** Inserts one row and returns it as stored (`RETURNING` its columns). */
  insert(table: DriverTable, row: Readonly<Record<string, unknown>>): Record<string, unknown>[];
  /** Sets `changes` on the rows matching `filter` and returns them as stored. */
  update(table: DriverTable, filter: ScopedFilter, changes: Readonly<Record<string, unknown>>): Record<string, unknown>[];
  /** Deletes the rows matching `filter` and returns them as they were. */
  delete(table: DriverTable, filter: ScopedFilter): Record<string, unknown>[];
  /** Runs `fn` atomically: a throw rolls back everything it wrote (nested calls may use savepoints). */
  transaction<T>(fn: () => T): T;
}

/** A table as a driver sees it; every name was checked to be a plain SQL identifier. */
export interface DriverTable {
  /** The table's name in the database. */
  name: string;
  /** The columns a statement reads and returns. */
  columns: readonly string[];
}

/**
 * A WHERE clause a driver must apply whole. The tenant condition is its own
 * field, not one of `equals`, so no filter exists without it.
 */
export interface ScopedFilter {
  /** `column = value`, always applied. */
  tenant: { readonly column: string; readonly value: string };
  /** Further `column = value` conditions, ANDed with the tenant condition. */
  equals: ReadonlyArray<readonly [column: string, value: unknown]>;
}

/** Ordering and paging for {@link TenantRepoDriver.select}. */
export interface SelectOptions {
  orderBy?: { column: string; descending: boolean };
  limit?: number;
}
