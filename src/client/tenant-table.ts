import { TenantScopeError } from "./tenant-scope-error.js";

/** A row of any table: column name to value. */
export type AnyRow = Record<string, unknown>;

/**
 * How one tenant-owned table looks to {@link createTenantRepo}. Every column
 * a query may read, filter on or write is listed: names outside the list are
 * refused, so no caller-supplied key ever reaches SQL as an identifier.
 */
export interface TenantTable<Row extends AnyRow = AnyRow> {
  /** The table's name in the database (default: its key in `tables`). */
  table?: string;
  /** The column holding the owning tenant's id. */
  tenantColumn: keyof Row & string;
  /** The primary key column `findById`, `update` and `delete` address rows by. */
  idColumn: keyof Row & string;
  /** Every column, including the id and tenant columns. */
  columns: readonly (keyof Row & string)[];
}

/**
 * Declares a tenant-owned table with its row type, for typed repositories:
 * `tables: { projects: tenantTable<Project>({ tenantColumn: "tenant_id", idColumn: "id", columns: [...] }) }`.
 */
export function tenantTable<Row extends AnyRow>(definition: TenantTable<Row>): TenantTable<Row> {
  return definition;
}

/** A definition after checking: names resolved and validated. */
export interface CheckedTable {
  key: string;
  name: string;
  tenantColumn: string;
  idColumn: string;
  columns: readonly string[];
}

// Plain identifiers only: drivers quote them, but nothing odd should need quoting.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Validates one definition; throws {@link TenantScopeError} naming the field at fault. */
export function checkTable(key: string, definition: TenantTable, field = `tables.${key}`): CheckedTable {
  if (typeof definition !== "object" || definition === null) invalid(field, "must be a table definition");
  const name = definition.table ?? key;
  identifier(name, `${field}.table`);
  if (!Array.isArray(definition.columns) || definition.columns.length === 0) invalid(`${field}.columns`, "must list the table's columns");
  definition.columns.forEach((column, i) => identifier(column, `${field}.columns[${i}]`));
  if (new Set(definition.columns).size !== definition.columns.length) invalid(`${field}.columns`, "lists a column twice");
  for (const role of ["tenantColumn", "idColumn"] as const) {
    if (!definition.columns.includes(definition[role])) invalid(`${field}.${role}`, `must be one of columns, got ${JSON.stringify(definition[role])}`);
  }
  if (definition.tenantColumn === definition.idColumn) invalid(`${field}.idColumn`, "cannot be the tenant column");
  return { key, name, tenantColumn: definition.tenantColumn, idColumn: definition.idColumn, columns: [...definition.columns] };
}

function identifier(value: unknown, field: string): void {
  if (typeof value !== "string" || !IDENTIFIER.test(value)) invalid(field, `must be a plain SQL identifier, got ${JSON.stringify(value)}`);
}

function invalid(field: string, problem: string): never {
  throw new TenantScopeError("TENANT_SCOPE_INVALID", `${field}: ${problem}`, field);
}
