import type { AdminAuditRecord } from "../audit/admin-audit.js";
import { optionalTime } from "../directory/admin-input.js";
import { BulkheadError } from "../errors.js";
import { form, reasonField, type PageContext } from "./console-layout.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html, type Html } from "./html.js";

const iso = (ms: number) => new Date(ms).toISOString();

function actionsTable(rows: readonly AdminAuditRecord[]): Html {
  return html`<table><thead><tr><th>At</th><th>Actor</th><th>Action</th><th>Object</th><th>Reason</th><th>Source</th><th>Result</th></tr></thead><tbody>
${rows.map((a) => html`<tr><td>${iso(a.at)}</td><td>${a.actor}</td><td>${a.action}</td><td>${a.object}</td><td>${a.reason}</td><td>${a.source}</td><td>${a.result}</td></tr>`)}</tbody></table>
${rows.length === 0 && html`<p>No admin action recorded.</p>`}`;
}

/** The export form: a POST with a reason (the export is audited), answered with the file. */
function exportForm(ctx: PageContext, deps: ConsoleDeps, tenantId: string): Html {
  return html`<h2>Export ${tenantId}'s audit</h2><p>Its decisions and operator actions as JSON lines, oldest first, each with its chain hash (as <code>bulkhead audit export</code>). The export itself is audited.</p>
${form(ctx, "/console/audit/export", html`<label>Since (RFC 3339, inclusive) <input name="since"></label><label>Until (exclusive) <input name="until"></label>${reasonField(deps.reasonCodes)}`, "Download export")}`;
}

function selectedTenant(ctx: PageContext): string {
  const tenantId = ctx.session.selectedTenant;
  if (!tenantId) throw new BulkheadError("ADMIN_FORBIDDEN", "tenant_id: select a tenant (with a reason) on the Tenants page before exporting its audit", "tenant_id");
  return tenantId;
}

/**
 * The selected tenant's admin audit (tenants.read, as on its page); the
 * operator-wide actions and the export only for `audit.read` (ADR 89), so a
 * support agent sees neither and is refused both when asking by hand.
 */
export function auditPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.nav({ href: "/console/audit", label: "Audit", needs: ["tenants.read"] });

  routes.page("/console/audit", ["tenants.read"], ({ ctx }) => {
    const tenantId = ctx.session.selectedTenant;
    const mayExport = ctx.caller.capabilities.has("audit.read");
    return {
      title: tenantId ? `Audit of ${tenantId}` : "Audit",
      body: html`${tenantId
        ? html`<h2>Admin actions on ${tenantId}</h2>${actionsTable(deps.audit.tenantActions(tenantId))}${mayExport && exportForm(ctx, deps, tenantId)}`
        : html`<p class="notice">Select a tenant (with a reason) on the <a href="/console/tenants">Tenants</a> page to see its audit.</p>`}
${mayExport && html`<h2>Operator-wide actions (no tenant: flags, plans, approvals, staff)</h2>${actionsTable(deps.audit.operatorActions())}`}`,
    };
  });

  routes.page("/console/audit/export", ["audit.read"], ({ ctx }) => ({ title: "Audit export", body: exportForm(ctx, deps, selectedTenant(ctx)) }));

  routes.download("/console/audit/export", ["audit.read"], async ({ ctx, form: posted, actor }) => {
    const tenantId = selectedTenant(ctx);
    const range = { tenantId, since: optionalTime(posted.since, "since") ?? undefined, until: optionalTime(posted.until, "until") ?? undefined };
    const lines = await deps.audit.exportTenant(range, actor());
    const stamp = iso(ctx.now).replace(/[:.]/g, "");
    return { filename: `audit-${tenantId}-${stamp}.jsonl`, contentType: "application/x-ndjson; charset=utf-8", body: lines.map((l) => `${l}\n`).join("") };
  });
}
