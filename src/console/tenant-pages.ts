import { BulkheadError } from "../errors.js";
import { apiKeyState } from "../identity/api-keys.js";
import { requireId } from "../validation.js";
import { form, reasonField, type PageContext } from "./console-layout.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html } from "./html.js";
import { tenantBillingSections } from "./tenant-billing-sections.js";

const iso = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString());
const tenantPath = (id: string) => `/console/tenants/${encodeURIComponent(id)}`;

/**
 * A page shows one tenant's data only after this session selected it, with
 * a reason (audited as tenant.select); selecting another tenant replaces it.
 */
export function requireSelected(ctx: PageContext, tenantId: string): void {
  if (ctx.session.selectedTenant !== tenantId) {
    throw new BulkheadError("ADMIN_FORBIDDEN", `tenant_id: select tenant '${tenantId}' (with a reason) before viewing or changing its data`, "tenant_id");
  }
}

/** Tenant search (minimal data), the audited selection, and the selected tenant's page. */
export function tenantPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.nav({ href: "/console/tenants", label: "Tenants", needs: ["tenants.read"] });

  routes.page("/console/tenants", ["tenants.read"], ({ ctx, query }) => {
    const q = (query.q ?? "").trim();
    if (q) requireId(q, "q");
    const found = deps.tenants.searchTenants(q, 20);
    return {
      title: "Tenants",
      body: html`<form method="get" action="/console/tenants"><label>Id or slug starts with <input name="q" value="${q}"></label><button type="submit">Search</button></form>
<table><thead><tr><th>Id</th><th>Slug</th><th>Plan</th><th>Status</th><th>Open (audited)</th></tr></thead><tbody>
${found.map((t) => html`<tr><td>${t.id}</td><td>${t.slug}</td><td>${t.planCode}</td><td>${t.status}</td>
<td>${form(ctx, `${tenantPath(t.id)}/select`, reasonField(deps.reasonCodes), "Select")}</td></tr>`)}
</tbody></table>${found.length === 0 && html`<p>No tenant matches.</p>`}`,
    };
  });

  routes.action("/console/tenants/:id/select", ["tenants.read"], async ({ ctx, params, actor }) => {
    const tenantId = requireId(params.id, "tenant_id");
    await deps.tenants.selectTenant(tenantId, actor());
    ctx.session.selectedTenant = tenantId;
    return tenantPath(tenantId);
  });

  routes.page("/console/tenants/:id", ["tenants.read"], ({ ctx, params }) => {
    const tenantId = requireId(params.id, "tenant_id");
    requireSelected(ctx, tenantId);
    const t = deps.tenants.getTenant(tenantId);
    const members = deps.tenants.members(tenantId);
    const keys = deps.access.listApiKeys(tenantId);
    const actions = deps.tenants.recentActions(tenantId);
    const mayImpersonate = ctx.caller.capabilities.has("impersonate");
    return {
      title: `Tenant ${t.name || t.slug}`,
      body: html`<table><tbody>
<tr><th>Id</th><td>${t.id}</td></tr><tr><th>Slug</th><td>${t.slug}</td></tr><tr><th>Name</th><td>${t.name}</td></tr>
<tr><th>Status</th><td>${t.status}</td></tr><tr><th>Plan</th><td>${t.planCode}</td></tr><tr><th>Billing status</th><td>${t.billingStatus}</td></tr>
<tr><th>Region</th><td>${t.region}</td></tr><tr><th>Seats taken</th><td>${t.memberCount}</td></tr></tbody></table>
${tenantBillingSections(ctx, deps, tenantId)}
<h2>Members</h2><table><thead><tr><th>Actor</th><th>Type</th><th>Role</th><th>Status</th></tr></thead><tbody>
${members.map((m) => html`<tr><td>${m.actorId}</td><td>${m.actorType}</td><td>${m.role}</td><td>${m.status}</td></tr>`)}</tbody></table>
${mayImpersonate && html`<h2>Impersonate a member</h2>${form(ctx, `${tenantPath(tenantId)}/impersonate`, html`<label>Member <select name="as_actor_id">${members
        .filter((m) => m.status === "active")
        .map((m) => html`<option value="${m.actorId}">${m.actorId}</option>`)}</select></label>
<label>Minutes <input name="ttl_minutes" type="number" min="1" value="15" required></label>${reasonField(deps.reasonCodes)}`, "Start impersonation")}`}
<h2>API keys (metadata only)</h2><table><thead><tr><th>Key</th><th>Name</th><th>Scopes</th><th>State</th><th>Expires</th></tr></thead><tbody>
${keys.map((k) => html`<tr><td>${k.id}</td><td>${k.name}</td><td>${k.scopes.join(", ")}</td><td>${apiKeyState(k, ctx.now)}</td><td>${iso(k.expiresAt)}</td></tr>`)}</tbody></table>
<h2>Recent admin actions</h2><table><thead><tr><th>At</th><th>Actor</th><th>Action</th><th>Object</th><th>Reason</th><th>Source</th></tr></thead><tbody>
${actions.map((a) => html`<tr><td>${iso(a.at)}</td><td>${a.actor}</td><td>${a.action}</td><td>${a.object}</td><td>${a.reason}</td><td>${a.source}</td></tr>`)}</tbody></table>`,
    };
  });
}
