import {
  AliasNode,
  AndNode,
  BinaryOperationNode,
  ColumnNode,
  IdentifierNode,
  JoinNode,
  OperationNodeTransformer,
  OperatorNode,
  ParensNode,
  PrimitiveValueListNode,
  ReferenceNode,
  TableNode,
  ValueListNode,
  ValueNode,
  ValuesNode,
  WhereNode,
  type ColumnUpdateNode,
  type DeleteQueryNode,
  type InsertQueryNode,
  type MergeQueryNode,
  type OnConflictNode,
  type OperationNode,
  type QueryId,
  type RawNode,
  type SelectQueryNode,
  type UpdateQueryNode,
  type WithNode,
} from "kysely";
import { TenantScopeError } from "../tenant-scope-error.js";

/** Which tables the transformer knows, and the tenant it scopes to. */
export interface ScopeRules {
  tenantId: string;
  /** Tenant-owned table name to its tenant column. */
  tenantOwned: ReadonlyMap<string, string>;
  /** Tables every tenant may use unscoped. */
  shared: ReadonlySet<string>;
}

// Joins whose ON clause can carry the tenant condition without changing
// which rows of the other side survive.
const JOINS_WITH_ON = new Set(["InnerJoin", "LeftJoin", "RightJoin", "FullJoin", "LateralInnerJoin", "LateralLeftJoin"]);
const CROSS_JOINS = new Set(["CrossJoin", "LateralCrossJoin", "CrossApply", "OuterApply"]);

/**
 * Rewrites one Kysely query so every tenant-owned table it reads, changes or
 * deletes from carries `<table or alias>.<tenant column> = <tenant>`, and
 * every insert into one carries the tenant id. Subqueries, CTE bodies and set
 * operations are queries of their own and are scoped the same way. Anything
 * it cannot scope throws `TENANT_QUERY_UNSCOPED`: an undeclared table, a raw
 * SQL source, MERGE, INSERT ... SELECT, REPLACE, an upsert that sets the tenant.
 * One instance per query: `tenantColumnsSeen` is what the result check reads.
 * Longer than our usual file because every query kind shares the CTE scope
 * stack and that set; splitting it would pass both around.
 */
export class TenantScopeTransformer extends OperationNodeTransformer {
  /** Tenant columns of the tenant-owned tables this query touched. */
  readonly tenantColumnsSeen = new Set<string>();
  private readonly cteNames: Set<string>[] = [];

  constructor(private readonly rules: ScopeRules) {
    super();
  }

  protected override transformSelectQuery(node: SelectQueryNode, queryId?: QueryId): SelectQueryNode {
    return this.withCtes(node.with, () => {
      const out = super.transformSelectQuery(node, queryId);
      const { joins, where } = this.scopeJoins(out.joins, (out.from?.froms ?? []).flatMap((s) => this.conditionFor(s)));
      return freeze({ ...out, joins, where: withConditions(out.where, where) });
    });
  }

  protected override transformUpdateQuery(node: UpdateQueryNode, queryId?: QueryId): UpdateQueryNode {
    return this.withCtes(node.with, () => {
      const out = super.transformUpdateQuery(node, queryId);
      const target = out.table ? this.conditionFor(out.table) : [];
      if (target.length > 0) this.refuseTenantChange(out.updates, this.rules.tenantOwned.get(sourceName(out.table!)!)!, "UPDATE");
      const froms = (out.from?.froms ?? []).flatMap((s) => this.conditionFor(s));
      const { joins, where } = this.scopeJoins(out.joins, [...target, ...froms]);
      return freeze({ ...out, joins, where: withConditions(out.where, where) });
    });
  }

  protected override transformDeleteQuery(node: DeleteQueryNode, queryId?: QueryId): DeleteQueryNode {
    return this.withCtes(node.with, () => {
      const out = super.transformDeleteQuery(node, queryId);
      const sources = [...out.from.froms, ...(out.using?.tables ?? [])].flatMap((s) => this.conditionFor(s));
      const { joins, where } = this.scopeJoins(out.joins, sources);
      return freeze({ ...out, joins, where: withConditions(out.where, where) });
    });
  }

  protected override transformInsertQuery(node: InsertQueryNode, queryId?: QueryId): InsertQueryNode {
    return this.withCtes(node.with, () => {
      const out = super.transformInsertQuery(node, queryId);
      const table = out.into ? sourceName(out.into) : undefined;
      if (table === undefined) throw unscoped("an INSERT without a target table");
      const column = this.rules.tenantOwned.get(table);
      if (column === undefined) {
        this.requireDeclared(table);
        return out;
      }
      this.tenantColumnsSeen.add(column);
      if (out.replace || out.orAction?.action === "replace" || out.onDuplicateKey) {
        throw unscoped(`REPLACE or ON DUPLICATE KEY into ${table}: it could overwrite another tenant's row`);
      }
      return freeze({ ...out, ...this.withTenantValues(out, table, column), onConflict: this.scopeUpsert(out.onConflict, out.into!, column) });
    });
  }

  protected override transformMergeQuery(): MergeQueryNode {
    throw unscoped("MERGE");
  }

  protected override transformRaw(node: RawNode, queryId?: QueryId): RawNode {
    // A raw fragment is ANDed with the tenant condition, so it can narrow a
    // query but not widen it, unless it reads a table itself.
    const text = rawText(node).toLowerCase();
    const names = [...this.rules.tenantOwned.keys()].filter((t) => new RegExp(`\\b${t.toLowerCase()}\\b`).test(text));
    if (/\bselect\b/.test(text) || names.length > 0) throw unscoped(`raw SQL that reads ${names[0] ?? "a table"} itself: ${JSON.stringify(node.sqlFragments.join("?"))}`);
    return super.transformRaw(node, queryId);
  }

  /** The tenant condition a FROM/USING/JOIN source needs: none, one, or a throw. */
  private conditionFor(source: OperationNode): OperationNode[] {
    const name = sourceName(source);
    if (name === undefined) {
      // A subquery with an alias was scoped as a query of its own.
      if (AliasNode.is(source) && source.node.kind === "SelectQueryNode") return [];
      throw unscoped(`a ${AliasNode.is(source) ? source.node.kind : source.kind} as a table source`);
    }
    if (this.cteNames.some((names) => names.has(name))) return [];
    const column = this.rules.tenantOwned.get(name);
    if (column === undefined) {
      this.requireDeclared(name);
      return [];
    }
    this.tenantColumnsSeen.add(column);
    return [tenantEquals(referenceTable(source), column, this.rules.tenantId)];
  }

  private scopeJoins(joins: readonly JoinNode[] | undefined, where: OperationNode[]): { joins: readonly JoinNode[] | undefined; where: OperationNode[] } {
    const scoped = joins?.map((join) => {
      const conditions = this.conditionFor(join.table);
      if (conditions.length === 0) return join;
      if (JOINS_WITH_ON.has(join.joinType)) return JoinNode.cloneWithOn(join, conditions[0]!);
      if (CROSS_JOINS.has(join.joinType)) {
        where.push(...conditions);
        return join;
      }
      throw unscoped(`a ${join.joinType} join of a tenant-owned table`);
    });
    return { joins: scoped, where };
  }

  /** The tenant column in every VALUES row: checked when the query gives it, added when it does not. */
  private withTenantValues(node: InsertQueryNode, table: string, column: string): Pick<InsertQueryNode, "columns" | "values"> {
    if (!node.values || !ValuesNode.is(node.values)) throw unscoped(`an INSERT into ${table} without a VALUES list (INSERT ... SELECT or DEFAULT VALUES)`);
    const columns = node.columns ?? [];
    const at = columns.findIndex((c) => c.column.name === column);
    if (at >= 0) {
      for (const item of node.values.values) this.requireOwnTenantValue(PrimitiveValueListNode.is(item) ? item.values[at] : item.values[at], table, column);
      return { columns, values: node.values };
    }
    const values = node.values.values.map((item) =>
      PrimitiveValueListNode.is(item) ? PrimitiveValueListNode.create([...item.values, this.rules.tenantId]) : ValueListNode.create([...item.values, ValueNode.create(this.rules.tenantId)]),
    );
    return { columns: [...columns, ColumnNode.create(column)], values: ValuesNode.create(values) };
  }

  private requireOwnTenantValue(value: unknown, table: string, column: string): void {
    const given = isValueNode(value) ? value.value : value;
    if (given === this.rules.tenantId) return;
    if (typeof value === "object" && value !== null && !isValueNode(value)) throw unscoped(`an expression as ${table}.${column}; give the tenant id or leave the column out`);
    throw new TenantScopeError("TENANT_MISMATCH", `${table}.${column}: ${JSON.stringify(given)} is not this context's tenant ${this.rules.tenantId}`, column);
  }

  /** ON CONFLICT DO UPDATE may only update the tenant's own row, and never its tenant. */
  private scopeUpsert(onConflict: OnConflictNode | undefined, into: TableNode, column: string): OnConflictNode | undefined {
    if (!onConflict?.updates) return onConflict;
    this.refuseTenantChange(onConflict.updates, column, "ON CONFLICT DO UPDATE");
    const condition = tenantEquals(into, column, this.rules.tenantId);
    return freeze({ ...onConflict, updateWhere: withConditions(onConflict.updateWhere, [condition]) });
  }

  private refuseTenantChange(updates: readonly ColumnUpdateNode[] | undefined, column: string, what: string): void {
    if (updates?.some((u) => ColumnNode.is(u.column) && u.column.column.name === column)) {
      throw new TenantScopeError("TENANT_MISMATCH", `${what} sets ${column}: a row cannot move to another tenant`, column);
    }
  }

  private requireDeclared(table: string): void {
    if (!this.rules.shared.has(table)) throw unscoped(`table ${table} is neither tenant-owned nor shared; declare it`);
  }

  private withCtes<T>(withNode: WithNode | undefined, body: () => T): T {
    const names = new Set((withNode?.expressions ?? []).map((cte) => cte.name.table.table.identifier.name));
    this.cteNames.push(names);
    try {
      return body();
    } finally {
      this.cteNames.pop();
    }
  }
}

/** The table a source names (`projects`, `projects as p`), or undefined for a subquery or expression. */
function sourceName(source: OperationNode): string | undefined {
  const table = AliasNode.is(source) ? source.node : source;
  return TableNode.is(table) ? table.table.identifier.name : undefined;
}

/** How the condition must name the table: by its alias when it has one. */
function referenceTable(source: OperationNode): TableNode {
  if (AliasNode.is(source) && IdentifierNode.is(source.alias)) return TableNode.create(source.alias.name);
  return (AliasNode.is(source) ? source.node : source) as TableNode;
}

/**
 * The SQL a raw node stands for, with nested raw nodes (`sql.raw`) spliced in
 * and table or identifier parameters (`sql.table`, `sql.id`) by name, so a
 * table name split across pieces is still seen. Other parameters are `?`.
 */
function rawText(node: RawNode): string {
  return node.sqlFragments
    .map((fragment, i) => {
      const parameter = node.parameters[i];
      if (parameter === undefined) return fragment;
      if (parameter.kind === "RawNode") return fragment + rawText(parameter as RawNode);
      if (TableNode.is(parameter)) return `${fragment}${parameter.table.identifier.name}`;
      if (IdentifierNode.is(parameter)) return `${fragment}${parameter.name}`;
      return `${fragment} ? `;
    })
    .join("");
}

function tenantEquals(table: TableNode, column: string, tenantId: string): OperationNode {
  return BinaryOperationNode.create(ReferenceNode.create(ColumnNode.create(column), table), OperatorNode.create("="), ValueNode.create(tenantId));
}

/** `(existing) AND c1 AND c2`: the parentheses keep an OR in the query's own WHERE from swallowing the tenant condition. */
function withConditions(where: WhereNode | undefined, conditions: OperationNode[]): WhereNode | undefined {
  if (conditions.length === 0) return where;
  const all = conditions.reduce((left, right) => AndNode.create(left, right));
  return WhereNode.create(where ? AndNode.create(ParensNode.create(where.where), all) : all);
}

function isValueNode(value: unknown): value is ValueNode {
  return typeof value === "object" && value !== null && (value as OperationNode).kind === "ValueNode";
}

function freeze<T>(node: T): T {
  return Object.freeze(node);
}

function unscoped(what: string): TenantScopeError {
  return new TenantScopeError("TENANT_QUERY_UNSCOPED", `cannot scope ${what} to the tenant`);
}
