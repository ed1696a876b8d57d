import type { CheckInput } from "../decision/check-input.js";
import type { Decision } from "../decision/decider.js";
import { BulkheadError } from "../errors.js";
import type { AdminCaller } from "../identity/staff-roles.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { CommandRegistry } from "../store/store-command.js";
import { adminCommand, commandActor, requireCapability, type AdminActor, type AuditedWriter } from "./audited-write.js";
import type { DecisionFilter, DecisionPage } from "./decision-query.js";

/** Who reads: the authenticated caller and where the call came from (admin_api, console). */
export interface StaffReader {
  caller: AdminCaller;
  source: string;
}

/**
 * The reason column of these rows. QueryDecisions carries no reason field
 * (the contract is unchanged, ADR 90), so the row names the right the read
 * was made under; the filters go into the object column.
 */
export const DECISION_READ_REASON = "audit.read";

/**
 * A tenant's decisions as staff see them (ADR 90): the decision-log query of
 * QueryDecisions and the console, and the console's Check playground. Each
 * read is sensitive access to a tenant's data, so each appends one
 * admin_audit row (a command, so every sidecar has it in replicated mode);
 * no row, no answer.
 */
export class DecisionAccess {
  private readonly kinds;

  constructor(
    private readonly deps: {
      audited: AuditedWriter;
      commands: CommandWriter;
      registry: CommandRegistry;
      /** The flushed decision-log query (src/compose.ts). */
      query: (filter: DecisionFilter, page: { size: number; token: string }) => DecisionPage;
      decider: { explain(input: CheckInput, deadline?: number): Promise<Decision> };
    },
  ) {
    const access = (action: string) =>
      deps.registry.register(adminCommand(action, (_tx, b: { tenantId: string; object: string }, by) => deps.audited.recordAccess(by, { tenantId: b.tenantId, object: b.object, action })));
    this.kinds = { query: access("decisions.query"), explain: access("check.explain") };
  }

  /**
   * Queried first (a refused filter or page size is no access), then
   * audited; a failed audit throws and the page is never returned.
   */
  async query(filter: DecisionFilter, page: { size: number; token: string }, by: StaffReader): Promise<DecisionPage> {
    requireCapability(by.caller, "audit.read", "query the decision log");
    const tenantId = requireTenant(filter.tenantId);
    const found = this.deps.query(filter, page);
    await this.record("query", tenantId, `decision_log?${filterText(filter)}`, by);
    return found;
  }

  /**
   * The playground: audited before it evaluates, so an answer that was
   * shown always has its row. The principal's tenant is the audited one.
   */
  async explain(input: CheckInput, by: StaffReader): Promise<Decision> {
    requireCapability(by.caller, "audit.read", "explain a check");
    const tenantId = requireTenant(input.principal.tenantId);
    const r = input.resource;
    const object = `check?${new URLSearchParams({ actor_id: input.principal.actorId, actor_type: input.principal.actorType, action: input.action, resource: `${r.type}/${r.id}`, resource_tenant_id: r.tenantId })}`;
    await this.record("explain", tenantId, object, by);
    return this.deps.decider.explain(input);
  }

  private async record(kind: keyof DecisionAccess["kinds"], tenantId: string, object: string, by: StaffReader): Promise<void> {
    const actor: AdminActor = { caller: by.caller, reason: DECISION_READ_REASON, source: by.source };
    await this.deps.commands.run(this.kinds[kind], { tenantId, object, by: commandActor(actor) });
  }
}

function requireTenant(tenantId: string | undefined): string {
  if (!tenantId) throw new BulkheadError("ADMIN_FORBIDDEN", "tenant_id: a tenant's decisions are read one tenant at a time", "tenant_id");
  return tenantId;
}

/** The filters as a query string in a fixed order, times in ISO: what the audit row says was asked. */
export function filterText(filter: DecisionFilter): string {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const fields: [string, string | undefined][] = [
    ["decision_id", filter.decisionId], ["actor_id", filter.actorId], ["action", filter.action], ["result", filter.result],
    ["reason", filter.reason], ["since", iso(filter.since)], ["until", iso(filter.until)],
  ];
  return new URLSearchParams(fields.filter((f): f is [string, string] => f[1] !== undefined && f[1] !== "")).toString();
}
