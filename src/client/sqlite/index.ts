/**
 * `bulkhead/client/sqlite`: the better-sqlite3 driver for `createTenantRepo`.
 * It takes the host's own `Database` and imports nothing: better-sqlite3
 * stays the host's dependency, at the host's version.
 * @packageDocumentation
 */
import type { DriverTable, ScopedFilter, SelectOptions, TenantRepoDriver } from "../tenant-repo-driver.js";

/** The part of a better-sqlite3 `Statement` the driver uses. */
export interface SqliteStatementLike {
  all(...params: unknown[]): unknown[];
}

/** The part of a better-sqlite3 `Database` the driver uses; a `new Database(file)` fits. */
export interface SqliteDatabaseLike {
  prepare(sql: string): SqliteStatementLike;
  transaction(fn: () => unknown): () => unknown;
}

const STATEMENT_CACHE_LIMIT = 256;

/**
 * A {@link TenantRepoDriver} over the host's better-sqlite3 database.
 * Statements are built from checked identifiers (quoted anyway) and bound
 * parameters, and every filter's tenant condition is the first term of its
 * WHERE. Writes use `RETURNING` so the repository sees what was stored.
 * Needs SQLite 3.35 or later (better-sqlite3 7.1+ bundles it).
 */
export function sqliteDriver(db: SqliteDatabaseLike): TenantRepoDriver {
  // Preparing is the expensive part; the same few shapes repeat per request.
  const statements = new Map<string, SqliteStatementLike>();
  const run = (sql: string, params: unknown[]): Record<string, unknown>[] => {
    let statement = statements.get(sql);
    if (!statement) {
      if (statements.size >= STATEMENT_CACHE_LIMIT) statements.clear();
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement.all(...params) as Record<string, unknown>[];
  };
  return {
    select(table, filter, options) {
      const where = whereClause(filter);
      return run(`SELECT ${columnList(table)} FROM ${quote(table.name)} WHERE ${where.sql}${orderAndLimit(options)}`, where.params);
    },
    insert(table, row) {
      const columns = Object.keys(row);
      const sql = `INSERT INTO ${quote(table.name)} (${columns.map(quote).join(", ")}) VALUES (${columns.map(() => "?").join(", ")}) RETURNING ${columnList(table)}`;
      return run(sql, columns.map((c) => row[c]));
    },
    update(table, filter, changes) {
      const columns = Object.keys(changes);
      const where = whereClause(filter);
      const sql = `UPDATE ${quote(table.name)} SET ${columns.map((c) => `${quote(c)} = ?`).join(", ")} WHERE ${where.sql} RETURNING ${columnList(table)}`;
      return run(sql, [...columns.map((c) => changes[c]), ...where.params]);
    },
    delete(table, filter) {
      const where = whereClause(filter);
      return run(`DELETE FROM ${quote(table.name)} WHERE ${where.sql} RETURNING ${columnList(table)}`, where.params);
    },
    transaction<T>(fn: () => T): T {
      // better-sqlite3 turns a nested transaction into a savepoint.
      return db.transaction(fn)() as T;
    },
  };
}

function whereClause(filter: ScopedFilter): { sql: string; params: unknown[] } {
  const terms = [[filter.tenant.column, filter.tenant.value] as const, ...filter.equals];
  return { sql: terms.map(([column, value]) => (value === null ? `${quote(column)} IS NULL` : `${quote(column)} = ?`)).join(" AND "), params: terms.filter(([, v]) => v !== null).map(([, v]) => v) };
}

function orderAndLimit(options: SelectOptions): string {
  const order = options.orderBy ? ` ORDER BY ${quote(options.orderBy.column)}${options.orderBy.descending ? " DESC" : ""}` : "";
  return options.limit === undefined ? order : `${order} LIMIT ${Math.trunc(options.limit)}`;
}

function columnList(table: DriverTable): string {
  return table.columns.map(quote).join(", ");
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
