import type { ScopedFilter, SelectOptions, TenantRepoDriver } from "./tenant-repo-driver.js";
import { TenantScopeError } from "./tenant-scope-error.js";
import { checkTable, type AnyRow, type CheckedTable, type TenantTable } from "./tenant-table.js";
import { requireTrustedContext, type TrustedTenantContext } from "./trusted-context.js";
import { logViolationToStderr, requireOwnRows, type TenantViolationSink } from "./tenant-violation.js";

/** The second argument of {@link createTenantRepo}. */
export interface TenantRepoDefinitions<Tables extends Record<string, TenantTable<any>>> {
  /** The host's database, through a driver (`sqliteDriver(db)` from `bulkhead/client/sqlite`). */
  database: TenantRepoDriver;
  /** The tenant-owned tables this repository reaches; nothing else is reachable through it. */
  tables: Tables;
  /** Where a foreign row is reported before the call throws (default: a JSON line on stderr). */
  onViolation?: TenantViolationSink;
}

/** A primary key value. */
export type RowId = string | number | bigint;

/** Filters for {@link TenantTableRepo.findMany}: equality on listed columns. */
export type RowFilter<Row> = { [K in keyof Row]?: Row[K] };

/** Options for {@link TenantTableRepo.findMany}. */
export interface FindManyOptions<Row> {
  orderBy?: keyof Row & string;
  descending?: boolean;
  /** At most this many rows (a positive integer). */
  limit?: number;
}

/**
 * One tenant-owned table, seen from one tenant. Another tenant's row does
 * not exist here: `findById` returns undefined, `update` undefined and
 * `delete` false for it, exactly as for an id nobody has (answer 404).
 */
export interface TenantTableRepo<Row extends AnyRow> {
  /** The row with this id in the tenant, or undefined. */
  findById(id: RowId): Row | undefined;
  /** The tenant's rows matching every `where` entry. */
  findMany(where?: RowFilter<Row>, options?: FindManyOptions<Row>): Row[];
  /** Inserts a row for the tenant; the tenant column is set here (a different one supplied throws). */
  insert(values: RowFilter<Row>): Row;
  /** Changes the tenant's row with this id; undefined when there is none. The tenant column cannot change. */
  update(id: RowId, changes: RowFilter<Row>): Row | undefined;
  /** Deletes the tenant's row with this id; false when there is none. */
  delete(id: RowId): boolean;
}

/** The repositories {@link createTenantRepo} returns, one per table. */
export type TenantRepo<Tables extends Record<string, TenantTable<any>>> = {
  readonly [K in keyof Tables]: Tables[K] extends TenantTable<infer Row> ? TenantTableRepo<Row> : never;
};

/**
 * Repositories over tenant-owned tables that cannot reach another tenant's rows.
 *
 * - Refuses to exist without a trusted context (one from
 *   {@link BulkheadClient.resolveContext}): a type error for anything else,
 *   and a {@link TenantScopeError} `TENANT_CONTEXT_MISSING` at run time.
 * - Every read, update and delete carries `tenant_column = context.tenantId`:
 *   the driver is handed the condition as a required part of every filter.
 * - Inserts get the tenant id set; a different one supplied throws `TENANT_MISMATCH`.
 * - Every row coming back is compared with the tenant id in JavaScript (not by
 *   the database's collation); a stranger is reported to `onViolation`, the
 *   call throws `TENANT_MISMATCH`, and a write that returned it is rolled back.
 */
export function createTenantRepo<Tables extends Record<string, TenantTable<any>>>(
  context: TrustedTenantContext,
  definitions: TenantRepoDefinitions<Tables>,
): TenantRepo<Tables> {
  const trusted = requireTrustedContext(context);
  const { database, tables } = definitions ?? ({} as TenantRepoDefinitions<Tables>);
  if (!database || typeof database.select !== "function") throw invalid("database", "a TenantRepoDriver is required");
  if (typeof tables !== "object" || tables === null || Object.keys(tables).length === 0) throw invalid("tables", "at least one table definition is required");
  const sink = definitions.onViolation ?? logViolationToStderr;
  const repo: Record<string, TenantTableRepo<AnyRow>> = {};
  for (const [key, definition] of Object.entries(tables)) repo[key] = tableRepo(trusted, database, checkTable(key, definition), sink);
  return Object.freeze(repo) as TenantRepo<Tables>;
}

function tableRepo(context: TrustedTenantContext, db: TenantRepoDriver, table: CheckedTable, sink: TenantViolationSink): TenantTableRepo<AnyRow> {
  const tenantId = context.tenantId;
  const driverTable = { name: table.name, columns: table.columns };
  const own = (rows: AnyRow[], operation: string) =>
    requireOwnRows(rows, { context, tenantColumn: table.tenantColumn, idColumn: table.idColumn, table: table.key, operation, sink });
  const byId = (id: unknown): ScopedFilter => scoped(table, tenantId, { [table.idColumn]: requireId(id) }, "id");

  return Object.freeze({
    findById: (id: unknown) => own(db.select(driverTable, byId(id), { limit: 2 }), "select")[0],
    findMany: (where: AnyRow = {}, options: FindManyOptions<AnyRow> = {}) =>
      own(db.select(driverTable, scoped(table, tenantId, where, "where"), selectOptions(table, options)), "select"),
    insert: (values: AnyRow) => {
      const row = { ...columnsOf(table, values, "values"), [table.tenantColumn]: ownTenant(table, tenantId, values, "values") };
      return db.transaction(() => own(db.insert(driverTable, row), "insert"))[0]!;
    },
    update: (id: unknown, changes: AnyRow) => {
      const filter = byId(id);
      const set = columnsOf(table, changes, "changes");
      if (table.tenantColumn in set) throw new TenantScopeError("TENANT_MISMATCH", `changes.${table.tenantColumn}: a row cannot move to another tenant`, `changes.${table.tenantColumn}`);
      if (Object.keys(set).length === 0) throw invalid("changes", "nothing to change");
      return db.transaction(() => own(db.update(driverTable, filter, set), "update"))[0];
    },
    delete: (id: unknown) => {
      const filter = byId(id);
      return db.transaction(() => own(db.delete(driverTable, filter), "delete")).length > 0;
    },
  });
}

/** The tenant condition plus equality on listed columns; a tenant column in `where` must name this tenant. */
function scoped(table: CheckedTable, tenantId: string, where: AnyRow, field: string): ScopedFilter {
  const { [table.tenantColumn]: _ownTenant, ...rest } = columnsOf(table, where, field);
  ownTenant(table, tenantId, where, field);
  return { tenant: { column: table.tenantColumn, value: tenantId }, equals: Object.entries(rest) };
}

/** The tenant id an input may carry: none, or exactly the context's. */
function ownTenant(table: CheckedTable, tenantId: string, values: AnyRow, field: string): string {
  const given = values[table.tenantColumn];
  if (given !== undefined && given !== tenantId) {
    throw new TenantScopeError("TENANT_MISMATCH", `${field}.${table.tenantColumn}: ${JSON.stringify(given)} is not this context's tenant ${tenantId}`, `${field}.${table.tenantColumn}`);
  }
  return tenantId;
}

/** `values` restricted to declared columns; an unknown key throws rather than being dropped. */
function columnsOf(table: CheckedTable, values: unknown, field: string): AnyRow {
  if (typeof values !== "object" || values === null || Array.isArray(values)) throw invalid(field, "must be an object of column values");
  const out: AnyRow = {};
  for (const [column, value] of Object.entries(values)) {
    if (!table.columns.includes(column)) throw invalid(`${field}.${column}`, `${table.key} has no column ${column}`);
    if (value !== undefined) out[column] = value;
  }
  return out;
}

function requireId(id: unknown): unknown {
  if (id === undefined || id === null || id === "") throw invalid("id", "required");
  return id;
}

function selectOptions(table: CheckedTable, options: FindManyOptions<AnyRow>): SelectOptions {
  const out: SelectOptions = {};
  if (options.orderBy !== undefined) {
    if (!table.columns.includes(options.orderBy)) throw invalid("options.orderBy", `${table.key} has no column ${options.orderBy}`);
    out.orderBy = { column: options.orderBy, descending: options.descending === true };
  }
  if (options.limit !== undefined) {
    if (!Number.isInteger(options.limit) || options.limit < 1) throw invalid("options.limit", "must be a positive integer");
    out.limit = options.limit;
  }
  return out;
}

function invalid(field: string, problem: string): TenantScopeError {
  return new TenantScopeError("TENANT_SCOPE_INVALID", `${field}: ${problem}`, field);
}
