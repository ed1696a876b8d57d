import type { Drift } from "../billing/reconcile.js";
import { BulkheadError } from "../errors.js";
import { requireId } from "../validation.js";
import { form, reasonField, type PageContext } from "./console-layout.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import type { ConsoleSession } from "./console-sessions.js";
import { html, type Html } from "./html.js";
import { requireSelected } from "./tenant-pages.js";
import { TENANT_PAGE_EVENTS } from "./tenant-billing-sections.js";

/** The same capability AdminService's ReplayBillingEvent, ReconcileBilling and RecalculateEntitlements need (finance). */
const BILLING: readonly ["billing.write"] = ["billing.write"];

/** A dry run this session made, kept until the apply that carries its plan (ADR 88). */
interface DryRun {
  tenantId: string;
  checked: number;
  drift: Drift[];
  plan: string;
  at: number;
}

const billingPath = (id: string) => `/console/tenants/${encodeURIComponent(id)}/billing`;

/**
 * The selected tenant's billing operations, all through BillingAdmin (which
 * writes through commands, so they hold in replicated mode and are audited
 * with the reason code and source "console"): reconcile as a dry run, then
 * an apply that carries the dry run's plan and is refused if Stripe or the
 * mirror moved since; replay one of the tenant's stored events; recalculate.
 */
export function billingPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  // Per session, in process like the sessions themselves; gone when the session is.
  const dryRuns = new WeakMap<ConsoleSession, DryRun>();
  const notices = new WeakMap<ConsoleSession, string>();
  const tenantOf = (ctx: PageContext, id: string | undefined) => {
    const tenantId = requireId(id, "tenant_id");
    requireSelected(ctx, tenantId);
    return tenantId;
  };

  routes.nav({ href: "/console/billing", label: "Billing", needs: BILLING });

  routes.page("/console/billing", BILLING, ({ ctx }) => {
    const selected = ctx.session.selectedTenant;
    return {
      title: "Billing",
      body: selected
        ? html`<p><a href="${billingPath(selected)}">Billing for the selected tenant ${selected}</a></p>`
        : html`<p>Select a tenant (with a reason) on the <a href="/console/tenants">Tenants</a> page first: billing actions are for one selected tenant.</p>`,
    };
  });

  routes.page("/console/tenants/:id/billing", BILLING, ({ ctx, params }) => {
    const tenantId = tenantOf(ctx, params.id);
    const t = deps.tenants.getTenant(tenantId);
    const notice = notices.get(ctx.session);
    notices.delete(ctx.session);
    const dry = dryRuns.get(ctx.session);
    return {
      title: `Billing · ${t.name || t.slug}`,
      body: html`${notice && html`<p class="notice" role="status" id="billing-notice">${notice}</p>`}
<p>Tenant <b>${t.id}</b> (${t.name}), plan <b>${t.planCode}</b>, billing status <b>${t.billingStatus}</b>. <a href="/console/tenants/${encodeURIComponent(tenantId)}">Tenant page</a></p>
<h2>Reconcile with Stripe</h2><p>A dry run lists this tenant's subscriptions from Stripe and shows the repairs; nothing is written until you apply it.</p>
${form(ctx, `${billingPath(tenantId)}/reconcile/dry-run`, reasonField(deps.reasonCodes), "Dry run")}
${dry?.tenantId === tenantId && dryRunResult(ctx, deps, dry)}
<h2>Recalculate entitlements</h2><p>Re-derives plan, billing status and seats from the mirrored subscriptions.</p>
${form(ctx, `${billingPath(tenantId)}/recalculate`, reasonField(deps.reasonCodes), "Recalculate")}
<h2>Replay a Stripe event</h2><p>Watermarks still apply: a replay never rolls state back (an older event answers "stale").</p>
${eventTable(ctx, deps, tenantId)}`,
    };
  });

  routes.action("/console/tenants/:id/billing/reconcile/dry-run", BILLING, async ({ ctx, params, actor }) => {
    const tenantId = tenantOf(ctx, params.id);
    const report = await deps.billing.reconcile({ dryRun: true, now: ctx.now, tenantId }, actor());
    dryRuns.set(ctx.session, { tenantId, checked: report.checked, drift: report.drift, plan: report.plan, at: ctx.now });
    return billingPath(tenantId);
  });

  routes.action("/console/tenants/:id/billing/reconcile/apply", BILLING, async ({ ctx, params, form: fields, actor }) => {
    const tenantId = tenantOf(ctx, params.id);
    const dry = dryRuns.get(ctx.session);
    // Only a plan this session was shown: an apply is never blind.
    if (!dry || dry.tenantId !== tenantId || fields.plan !== dry.plan) {
      throw new BulkheadError("ADMIN_CONFLICT", "plan: apply the dry run shown on this page; run the dry run first", "plan");
    }
    const report = await deps.billing.reconcile({ dryRun: false, now: ctx.now, tenantId, expectedPlan: dry.plan }, actor());
    dryRuns.delete(ctx.session);
    notices.set(ctx.session, report.applied ? `Reconciled: repaired ${report.drift.length} subscription(s) at store revision ${report.revision}.` : "Reconcile found nothing to repair.");
    return billingPath(tenantId);
  });

  routes.action("/console/tenants/:id/billing/recalculate", BILLING, async ({ ctx, params, actor }) => {
    const tenantId = tenantOf(ctx, params.id);
    const result = await deps.billing.recalculateEntitlements(tenantId, actor());
    notices.set(ctx.session, `Recalculated entitlements: ${result.changed ? "changed" : "unchanged"} (store revision ${result.revision}).`);
    return billingPath(tenantId);
  });

  routes.action("/console/tenants/:id/billing/replay", BILLING, async ({ ctx, params, form: fields, actor }) => {
    const tenantId = tenantOf(ctx, params.id);
    const eventId = requireId(fields.event_id, "event_id");
    const result = await deps.billing.replayEvent(eventId, actor(), { tenantId });
    notices.set(ctx.session, `Replayed ${eventId}: ${result.outcome}.`);
    return billingPath(tenantId);
  });
}

function dryRunResult(ctx: PageContext, deps: ConsoleDeps, dry: DryRun): Html {
  const fields = html`<input type="hidden" name="plan" value="${dry.plan}">${reasonField(deps.reasonCodes)}`;
  return html`<section id="dry-run"><h3>Dry run at ${new Date(dry.at).toISOString()}: ${dry.checked} subscription(s) checked, ${dry.drift.length} to repair</h3>
<table><thead><tr><th>Subscription</th><th>Field</th><th>Mirror</th><th>Stripe</th></tr></thead><tbody>
${dry.drift.map((d) => Object.entries(d.changes).map(([field, [mirror, stripe]]) =>
    html`<tr><td>${d.subscriptionId}</td><td>${field}</td><td>${JSON.stringify(mirror)}</td><td>${JSON.stringify(stripe)}</td></tr>`))}</tbody></table>
${dry.drift.length === 0 ? html`<p>Nothing to repair.</p>` : form(ctx, `${billingPath(dry.tenantId)}/reconcile/apply`, fields, "Apply these repairs")}</section>`;
}

function eventTable(ctx: PageContext, deps: ConsoleDeps, tenantId: string): Html {
  const events = deps.billing.listEvents(tenantId, TENANT_PAGE_EVENTS);
  if (events.length === 0) return html`<p>No Stripe events for this tenant.</p>`;
  return html`<table id="replay-events"><thead><tr><th>At</th><th>Event</th><th>Type</th><th>Outcome</th><th>Replay</th></tr></thead><tbody>
${events.map((e) => html`<tr><td>${new Date(e.created).toISOString()}</td><td>${e.eventId}</td><td>${e.type}</td><td>${e.outcome}</td>
<td>${form(ctx, `${billingPath(tenantId)}/replay`, html`<input type="hidden" name="event_id" value="${e.eventId}">${reasonField(deps.reasonCodes)}`, "Replay")}</td></tr>`)}</tbody></table>`;
}
