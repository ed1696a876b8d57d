import type { LimitReport } from "../entitlements/entitlement-report.js";
import type { PageContext } from "./console-layout.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html, type Html } from "./html.js";

/** The tenant page's latest Stripe events (ListBillingEvents answers 20 by default too). */
export const TENANT_PAGE_EVENTS = 20;

const iso = (ms: number | null) => (ms === null || !Number.isFinite(ms) ? "" : new Date(ms).toISOString());
const limitText = (n: number | null) => (n === null ? "unlimited" : String(n));

/** "soft limit reached" at or past the soft limit (as Metering warns), "hard limit reached" when nothing is left. */
function warning(l: LimitReport): string {
  const taken = l.used + l.reserved;
  if (l.limit.hard !== null && taken >= l.limit.hard) return "hard limit reached";
  if (l.limit.soft !== null && taken >= l.limit.soft) return "soft limit reached";
  return "";
}

/**
 * The selected tenant's entitlements (with their sources and expiries), usage
 * against limits (with the window's reset and soft-limit warnings) and recent
 * Stripe events, each shown only to a caller AdminService lets read them
 * (tenants.read, as GetTenant and ListBillingEvents).
 */
export function tenantBillingSections(ctx: PageContext, deps: ConsoleDeps, tenantId: string): Html {
  if (!ctx.caller.capabilities.has("tenants.read")) return html``;
  const report = deps.entitlements(tenantId, ctx.now);
  const events = deps.billing.listEvents(tenantId, TENANT_PAGE_EVENTS);
  const mayAct = ctx.caller.capabilities.has("billing.write");
  return html`${mayAct && html`<p><a id="billing-actions" href="/console/tenants/${encodeURIComponent(tenantId)}/billing">Billing actions (reconcile, replay, recalculate)</a></p>`}
<h2>Entitlements</h2><p>Effective plan <b>${report.planCode}</b>, billing status <b>${report.billingStatus}</b>.</p>
<table id="entitlements"><thead><tr><th>Entitlement</th><th>Source</th><th>From</th><th>Expires</th></tr></thead><tbody>
${report.grants.map((g) => html`<tr><td>${g.key}</td><td>${g.source}</td><td>${g.sourceId}</td><td>${iso(g.expiresAt) || "never"}</td></tr>`)}</tbody></table>
${report.grants.length === 0 && html`<p>No entitlements.</p>`}
<h2>Usage against limits</h2><table id="usage"><thead><tr><th>Meter</th><th>Kind</th><th>Used</th><th>Reserved</th><th>Soft</th><th>Hard</th><th>Left</th><th>Resets</th><th>Limit from</th><th>Warning</th></tr></thead><tbody>
${report.limits.map((l) => html`<tr><td>${l.limit.meter}</td><td>${l.limit.kind}</td><td>${l.used}</td><td>${l.reserved}</td><td>${limitText(l.limit.soft)}</td>
<td>${limitText(l.limit.hard)}</td><td>${limitText(l.remaining)}</td><td>${iso(l.window.end) || "never"}</td><td>${l.limit.sources.join(", ")}</td>
<td>${warning(l) && html`<span class="warning">${warning(l)}</span>`}</td></tr>`)}</tbody></table>
${report.limits.length === 0 && html`<p>No metered limits.</p>`}
<h2>Recent Stripe events</h2><table id="billing-events"><thead><tr><th>At</th><th>Event</th><th>Type</th><th>Outcome</th></tr></thead><tbody>
${events.map((e) => html`<tr><td>${iso(e.created)}</td><td>${e.eventId}</td><td>${e.type}</td><td>${e.outcome}</td></tr>`)}</tbody></table>
${events.length === 0 && html`<p>No Stripe events for this tenant.</p>`}`;
}
