import type { DecisionFilter } from "../audit/decision-query.js";
import { BulkheadError } from "../errors.js";
import { oneOf, optionalTime } from "../directory/admin-input.js";
import { requireId } from "../validation.js";
import type { PageContext } from "./console-layout.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html } from "./html.js";

const decisionPath = (id: string) => `/console/decisions/${encodeURIComponent(id)}`;
const optionalId = (value: string | undefined, field: string) => (value ? requireId(value, field) : undefined);

/**
 * The decision log is searched in the session's selected tenant only (the
 * same one-tenant rule AdminService.QueryDecisions enforces): with none
 * selected there is nothing to show, not "every tenant".
 */
export function selectedTenant(ctx: PageContext): string {
  const tenantId = ctx.session.selectedTenant;
  if (!tenantId) throw new BulkheadError("ADMIN_FORBIDDEN", "tenant_id: select a tenant (with a reason) on the Tenants page before searching its decisions", "tenant_id");
  return tenantId;
}

/** The search form's fields, validated as AdminService validates QueryDecisions' (same helpers, same field names). */
function filterOf(tenantId: string, query: Record<string, string>): DecisionFilter {
  return {
    tenantId,
    actorId: optionalId(query.actor_id, "actor_id"),
    action: optionalId(query.action, "action"),
    reason: optionalId(query.reason, "reason"),
    result: query.result ? oneOf(query.result, ["allow", "deny"] as const, "result") : undefined,
    since: optionalTime(query.since || undefined, "since") ?? undefined,
    until: optionalTime(query.until || undefined, "until") ?? undefined,
  };
}

/** Decision search and one decision's detail, through the query AdminService.QueryDecisions uses (audit.read). */
export function decisionPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.nav({ href: "/console/decisions", label: "Decisions", needs: ["audit.read"] });

  routes.page("/console/decisions", ["audit.read"], async ({ ctx, query }) => {
    const tenantId = selectedTenant(ctx);
    // Audited (decisions.query, source console): reading a tenant's decision log is sensitive access (ADR 90).
    const page = await deps.decisionAccess.query(filterOf(tenantId, query), { size: 50, token: query.page_token ?? "" }, { caller: ctx.caller, source: "console" });
    const q = (name: string) => query[name] ?? "";
    const next = new URLSearchParams({ ...query, page_token: page.nextPageToken }).toString();
    return {
      title: `Decisions in ${tenantId}`,
      body: html`<form method="get" action="/console/decisions">
<label>Actor <input name="actor_id" value="${q("actor_id")}"></label><label>Action <input name="action" value="${q("action")}"></label>
<label>Result <select name="result"><option value="">any</option>${(["allow", "deny"] as const).map((r) => html`<option value="${r}"${r === q("result") && html` selected`}>${r}</option>`)}</select></label>
<label>Reason <input name="reason" value="${q("reason")}"></label>
<label>Since (ISO time) <input name="since" value="${q("since")}"></label><label>Until <input name="until" value="${q("until")}"></label>
<button type="submit">Search</button></form>
<table><thead><tr><th>At</th><th>Actor</th><th>Action</th><th>Resource</th><th>Result</th><th>Reasons</th><th></th></tr></thead><tbody>
${page.decisions.map((d) => html`<tr><td>${d.at}</td><td>${d.actor_id}</td><td>${d.action}</td><td>${d.resource_type}/${d.resource_id}</td><td>${d.allow ? "allow" : "deny"}</td><td>${d.reasons.join(", ")}</td>
<td><a href="${decisionPath(d.decision_id)}">Open</a></td></tr>`)}</tbody></table>
${page.decisions.length === 0 && html`<p>No decision matches.</p>`}${page.nextPageToken && html`<p><a href="/console/decisions?${next}">Older</a></p>`}`,
    };
  });

  routes.page("/console/decisions/:id", ["audit.read"], async ({ ctx, params }) => {
    const tenantId = selectedTenant(ctx);
    const decisionId = requireId(params.id, "decision_id");
    // Looked up within the selected tenant: another tenant's decision id is "not found", never shown.
    const d = (await deps.decisionAccess.query({ tenantId, decisionId }, { size: 1, token: "" }, { caller: ctx.caller, source: "console" })).decisions[0];
    if (!d) throw new BulkheadError("ADMIN_NOT_FOUND", `decision_id: no decision '${decisionId}' in tenant '${tenantId}'`, "decision_id");
    return {
      title: `Decision ${d.decision_id}`,
      body: html`<table><tbody>
<tr><th>At</th><td>${d.at}</td></tr><tr><th>Tenant</th><td>${d.tenant_id}</td></tr><tr><th>Actor</th><td>${d.actor_id} (${d.actor_type})</td></tr>
<tr><th>Action</th><td>${d.action}</td></tr><tr><th>Resource</th><td>${d.resource_type}/${d.resource_id} in ${d.resource_tenant_id}</td></tr>
<tr><th>Result</th><td>${d.allow ? "allow" : "deny"}</td></tr><tr><th>Policy revision</th><td>${d.policy_revision}</td></tr>
<tr><th>Store revision</th><td>${d.store_revision}</td></tr><tr><th>Request id</th><td>${d.request_id}</td></tr><tr><th>Source</th><td>${d.source}</td></tr>
${d.impersonation !== null && html`<tr><th>Impersonation</th><td>${JSON.stringify(d.impersonation)}</td></tr>`}</tbody></table>
<h2>Reasons</h2><ul>${d.reasons.map((r) => html`<li><code>${r}</code></li>`)}</ul><p><a href="/console/decisions">Back to the search</a></p>`,
    };
  });
}
