import { validatePlan, validateUser } from "../directory/admin-input.js";
import { invalidArgument } from "../errors.js";
import { userChange } from "../directory/directory-admin.js";
import { planChange } from "../entitlements/commercial-admin.js";
import { flagChange } from "../flags/flag-admin.js";
import { validateFlagJson } from "../flags/flag-validation.js";
import type { ApprovableChange, Approval } from "../identity/approvals.js";
import { BREAK_GLASS_JUSTIFICATION_MAX, BREAK_GLASS_TTL_MAX_SECONDS, breakGlassStatus } from "../identity/break-glass.js";
import { form, reasonField, type PageContext } from "./console-layout.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html, type Html } from "./html.js";

const iso = (ms: number | null) => (ms === null ? "" : new Date(ms).toISOString());
const VERBS = ["user.put", "plan.put", "flag.put"] as const;

/** Content JSON as the approvals page shows it, validated as the write validates it, for `object`. */
export function breakGlassChange(verb: string, object: string, contentJson: string): ApprovableChange {
  let content: unknown;
  try {
    content = JSON.parse(contentJson);
  } catch {
    throw invalidArgument("content", "must be JSON: the change exactly as it will be written");
  }
  if (content === null || typeof content !== "object" || Array.isArray(content)) throw invalidArgument("content", "must be a JSON object");
  const c = content as Record<string, never>;
  const change = verb === "user.put" ? userChange(validateUser({ userId: c.id, email: c.email, displayName: c.displayName }))
    : verb === "plan.put" ? planChange(validatePlan({ planCode: c.code, name: c.name, entitlements: c.entitlements, limits: c.limits }))
    : verb === "flag.put" ? flagChange(validateFlagJson(contentJson))
    : undefined;
  if (!change) throw invalidArgument("operation", `must be one of ${VERBS.join(", ")}`);
  if (change.object !== object) throw invalidArgument("object", `names '${object}' but the content is for '${change.object}'`);
  return change;
}

function breakGlassForm(ctx: PageContext, deps: ConsoleDeps): Html {
  return html`<section class="break-glass" id="break-glass-form"><h2>Break glass</h2>
<p class="error" role="alert"><b>Emergency only.</b> This opens, without a second person, an approval for exactly one change that
would otherwise need one. It is usable once, by you only, for at most ${BREAK_GLASS_TTL_MAX_SECONDS / 60} minutes. Opening it, using it
and letting it expire are each recorded in the break-glass log and the audit with your name, reason and justification.</p>
${form(ctx, "/console/approvals/break-glass", html`<label>Operation <select name="operation" required>${VERBS.map((v) => html`<option value="${v}">${v}</option>`)}</select></label>
<label>Object <input name="object" required maxlength="200"></label>
<label>Content (JSON, exactly as it will be written) <textarea name="content" required rows="4" cols="60"></textarea></label>
${reasonField(deps.reasonCodes)}
<label>Justification (what is broken, why no second person can approve) <textarea name="justification" required minlength="10" maxlength="${String(BREAK_GLASS_JUSTIFICATION_MAX)}" rows="3" cols="60"></textarea></label>
<label>Minutes (at most ${BREAK_GLASS_TTL_MAX_SECONDS / 60}) <input name="ttl_minutes" type="number" min="1" max="${String(BREAK_GLASS_TTL_MAX_SECONDS / 60)}" value="${String(BREAK_GLASS_TTL_MAX_SECONDS / 60)}"></label>`, "Break glass")}
</section>`;
}

function grantRow(now: number, g: Approval): Html {
  const at = g.action.lastIndexOf("@");
  const colon = g.action.indexOf(":");
  return html`<tr id="${g.id}"><td>${g.id}</td><td>${g.requestedBy}</td><td><code>${g.action.slice(0, colon)}</code> on <code>${g.action.slice(colon + 1, at)}</code></td>
<td>${iso(g.createdAt)}</td><td>${iso(g.expiresAt)}</td><td>${g.reason}</td><td>${g.justification}</td><td>${breakGlassStatus(g, now)}</td><td>${iso(g.usedAt)}</td>
<td><details><summary>content</summary><pre>${g.contentJson}</pre></details></td></tr>`;
}

function breakGlassLog(ctx: PageContext, deps: ConsoleDeps): Html {
  const grants = deps.access.breakGlassLog();
  const trail = deps.access.breakGlassTrail();
  return html`<section id="break-glass-log"><h2>Break-glass log</h2>
${grants.length === 0 ? html`<p>Nobody has broken glass.</p>` : html`<table class="break-glass-log"><thead><tr><th>Grant (approval_id)</th><th>Opened by</th><th>Operation</th><th>Opened at</th>
<th>Expires</th><th>Reason</th><th>Justification</th><th>Status</th><th>Used at</th><th>Content</th></tr></thead>
<tbody>${grants.map((g) => grantRow(ctx.now, g))}</tbody></table>`}
<h3>Trail (audit rows)</h3>
${trail.length === 0 ? html`<p>No break-glass audit rows.</p>` : html`<table class="break-glass-trail"><thead><tr><th>At</th><th>Actor</th><th>Event</th><th>Object</th><th>Reason</th><th>Source</th></tr></thead>
<tbody>${trail.map((r) => html`<tr><td>${iso(r.at)}</td><td>${r.actor}</td><td>${r.action}</td><td>${r.object}</td><td>${r.reason}</td><td>${r.source}</td></tr>`)}</tbody></table>`}
</section>`;
}

/** The form and the log, or nothing at all for staff without break_glass. */
export function breakGlassSection(ctx: PageContext, deps: ConsoleDeps): Html {
  if (!ctx.caller.capabilities.has("break_glass")) return html``;
  return html`${breakGlassForm(ctx, deps)}${breakGlassLog(ctx, deps)}`;
}

/** POST /console/approvals/break-glass: AccessAdmin.breakGlass checks break_glass again, as for AdminService. */
export function breakGlassPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.action("/console/approvals/break-glass", ["break_glass"], async ({ form: posted, actor }) => {
    const change = breakGlassChange(posted.operation ?? "", (posted.object ?? "").trim(), posted.content ?? "");
    const minutes = (posted.ttl_minutes ?? "").trim();
    if (minutes !== "" && !/^[0-9]{1,3}$/.test(minutes)) throw invalidArgument("ttl_minutes", `must be a whole number of minutes, at most ${BREAK_GLASS_TTL_MAX_SECONDS / 60}`);
    const opened = await deps.access.breakGlass(change, posted.justification ?? "", minutes === "" ? 0 : Number(minutes) * 60, actor());
    return `/console/approvals#${opened.grant.id}`;
  });
}
