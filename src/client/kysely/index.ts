/**
 * `bulkhead/client/kysely`: a Kysely plugin that scopes every query to one
 * tenant. Needs the host's own `kysely` (an optional peer dependency of
 * bulkhead, ^0.28); `bulkhead/client` itself never loads it.
 * @packageDocumentation
 */
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryId, QueryResult, RootOperationNode, UnknownRow } from "kysely";
import { TenantScopeError } from "../tenant-scope-error.js";
import { requireTrustedContext, type TrustedTenantContext } from "../trusted-context.js";
import { logViolationToStderr, requireOwnRows, type TenantViolationSink } from "../tenant-violation.js";
import { TenantScopeTransformer, type ScopeRules } from "./tenant-scope-transformer.js";

/** Which tables a {@link TenantScopePlugin} scopes, and which it lets through. */
export interface TenantScopeOptions {
  /** Tenant-owned tables: table name to the column holding the tenant id. */
  tenantOwned: Readonly<Record<string, string>>;
  /** Tables with no tenant (plans, countries) that queries may use unscoped. Any other table is refused. */
  shared?: readonly string[];
  /** Where a foreign row in a result is reported before the query throws (default: a JSON line on stderr). */
  onViolation?: TenantViolationSink;
}

/**
 * Scopes a Kysely instance to the trusted context's tenant:
 * `const db = kysely.withPlugin(new TenantScopePlugin(context, { tenantOwned: { projects: "tenant_id" } }))`.
 *
 * - SELECT, UPDATE and DELETE on a tenant-owned table (as the main table, a
 *   join, a USING or UPDATE ... FROM source, in a subquery or CTE) get
 *   `<table>.<tenant column> = <tenant>`; a join gets it in its ON clause.
 * - INSERT gets the tenant column set; a different value throws
 *   `TENANT_MISMATCH`; an upsert updates only the tenant's own row.
 * - A query it cannot scope throws {@link TenantScopeError}
 *   `TENANT_QUERY_UNSCOPED` before it runs: raw SQL as a whole query or as a
 *   source, a table declared neither tenant-owned nor shared, MERGE,
 *   INSERT ... SELECT, REPLACE, schema changes.
 * - Result rows whose tenant column names another tenant throw `TENANT_MISMATCH`
 *   (and are reported); rows that did not select the column are not checked.
 */
export class TenantScopePlugin implements KyselyPlugin {
  private readonly context: TrustedTenantContext;
  private readonly rules: ScopeRules;
  private readonly sink: TenantViolationSink;
  // What each query touched, for its result check; keyed by Kysely's per-query id object.
  private readonly seen = new WeakMap<QueryId, Set<string>>();

  /** Throws {@link TenantScopeError} without a trusted context or with malformed options. */
  constructor(context: TrustedTenantContext, options: TenantScopeOptions) {
    this.context = requireTrustedContext(context);
    const owned = Object.entries(options?.tenantOwned ?? {});
    if (owned.length === 0) throw new TenantScopeError("TENANT_SCOPE_INVALID", "tenantOwned: name at least one tenant-owned table", "tenantOwned");
    for (const [table, column] of owned) {
      if (typeof column !== "string" || column === "") throw new TenantScopeError("TENANT_SCOPE_INVALID", `tenantOwned.${table}: the tenant column name is required`, `tenantOwned.${table}`);
    }
    const shared = new Set(options.shared ?? []);
    const both = owned.find(([table]) => shared.has(table));
    if (both) throw new TenantScopeError("TENANT_SCOPE_INVALID", `shared: ${both[0]} is also tenant-owned`, "shared");
    this.rules = { tenantId: this.context.tenantId, tenantOwned: new Map(owned), shared };
    this.sink = options.onViolation ?? logViolationToStderr;
  }

  /** Adds the tenant conditions, or throws for a query it cannot scope. */
  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    if (!["SelectQueryNode", "InsertQueryNode", "UpdateQueryNode", "DeleteQueryNode"].includes(node.kind)) {
      throw new TenantScopeError("TENANT_QUERY_UNSCOPED", `cannot scope a ${node.kind === "RawNode" ? "raw SQL query" : node.kind} to the tenant; use an unscoped Kysely instance for migrations`);
    }
    const transformer = new TenantScopeTransformer(this.rules);
    const scoped = transformer.transformNode(node, queryId);
    this.seen.set(queryId, transformer.tenantColumnsSeen);
    return scoped;
  }

  /** Checks every returned row's tenant columns against the context's tenant. */
  async transformResult({ result, queryId }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    for (const column of this.seen.get(queryId) ?? []) {
      requireOwnRows([...result.rows], { context: this.context, tenantColumn: column, table: "query", operation: "query", sink: this.sink, allowMissing: true });
    }
    return result;
  }
}
