import { APPROVABLE_VERB_CAPABILITY, approvalVerb, type Approval } from "../identity/approvals.js";
import { requireId } from "../validation.js";
import { form, reasonField, type PageContext } from "./console-layout.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { breakGlassPages, breakGlassSection } from "./break-glass-pages.js";
import { describeRules } from "./flag-rollout.js";
import { flagPath } from "./flag-rollout-pages.js";
import { html, type Html } from "./html.js";

const iso = (ms: number) => new Date(ms).toISOString();

/** `flag.put:beta@<sha-256>` as its verb, object and digest. */
function operationOf(action: string): { verb: string; object: string; digest: string } {
  const at = action.lastIndexOf("@");
  const colon = action.indexOf(":");
  return { verb: action.slice(0, colon), object: action.slice(colon + 1, at), digest: action.slice(at + 1) };
}

/** Every field of the content, however deep: nothing an approver approves is left out of the page. */
function contentView(value: unknown, field = ""): Html {
  if (Array.isArray(value)) return value.length === 0 ? html`<i>empty list</i>` : html`<ol>${value.map((v) => html`<li>${contentView(v)}</li>`)}</ol>`;
  if (value !== null && typeof value === "object") {
    return html`<table class="content"><tbody>${Object.entries(value).map(([k, v]) => html`<tr><th>${k}</th><td>${contentView(v, k)}</td></tr>`)}</tbody></table>`;
  }
  // A time (cleanupAt, expiresAt) is stored as epoch ms: the approver also reads it as a date.
  const when = typeof value === "number" && /At$/.test(field) ? html` (${iso(value)})` : html``;
  return html`<code>${JSON.stringify(value)}</code>${when}`;
}

/** For a rollout: what the flag's rules are now, so the approver sees what would change. */
function currentRules(deps: ConsoleDeps, key: string): Html {
  const now = deps.flags.find(key);
  if (!now) return html`<p>Flag ${key} does not exist yet: this creates it.</p>`;
  return html`<p>Rules of ${key} now: ${describeRules(now.rules).join("; ") || "none (on for everyone)"}.</p>`;
}

function nextStep(ctx: PageContext, deps: ConsoleDeps, a: Approval): Html {
  const op = operationOf(a.action);
  if (a.requestedBy === ctx.caller.actor) {
    if (a.approvedBy === null) return html`<p>Your request: a different staff member must approve it (you cannot approve your own).</p>`;
    return html`<p>Approved by ${a.approvedBy}. ${op.verb === "flag.put"
      ? html`<a href="${flagPath(op.object)}?approval_id=${encodeURIComponent(a.id)}">Apply this rollout</a> (once, before ${iso(a.expiresAt)}).`
      : html`Use it on the write it covers (approval_id ${a.id}).`}</p>`;
  }
  if (a.approvedBy !== null) return html`<p>Approved by ${a.approvedBy}; waiting for ${a.requestedBy} to use it.</p>`;
  const needs = APPROVABLE_VERB_CAPABILITY[approvalVerb(a.action)];
  if (!ctx.caller.capabilities.has(needs)) return html`<p>Only staff who may make this change themselves (${needs}) can approve it.</p>`;
  return form(ctx, `/console/approvals/${encodeURIComponent(a.id)}/approve`, reasonField(deps.reasonCodes), "Approve");
}

/** One request in full (operation, content, requester, reason, expiry), then what the reader may do with it. */
function approvalView(ctx: PageContext, deps: ConsoleDeps, a: Approval): Html {
  const op = operationOf(a.action);
  const left = Math.max(0, Math.ceil((a.expiresAt - ctx.now) / 60_000));
  return html`<section class="approval" id="${a.id}"><h2>${op.verb} ${op.object}</h2>
<table><tbody><tr><th>Approval</th><td>${a.id}</td></tr><tr><th>Operation</th><td><code>${op.verb}</code> on <code>${op.object}</code></td></tr>
<tr><th>Requested by</th><td>${a.requestedBy}</td></tr><tr><th>Reason</th><td>${a.reason}</td></tr>
<tr><th>Requested at</th><td>${iso(a.createdAt)}</td></tr><tr><th>Expires</th><td>${iso(a.expiresAt)} (in ${left} min)</td></tr>
<tr><th>Status</th><td>${a.approvedBy === null ? "waiting for a second person" : html`approved by ${a.approvedBy}`}</td></tr>
<tr><th>Content SHA-256</th><td><code>${op.digest}</code></td></tr></tbody></table>
<h3>Content, every field</h3>${contentView(JSON.parse(a.contentJson))}${op.verb === "flag.put" && currentRules(deps, op.object)}
<details><summary>Exact bytes approved (canonical JSON)</summary><pre>${a.contentJson}</pre></details>
${nextStep(ctx, deps, a)}</section>`;
}

/**
 * The two-person queue (AccessAdmin, as AdminService's GetApproval and
 * Approve): every live request shown in full before its Approve button.
 * That the approver is someone else is the use case's rule, so a hand-made
 * POST of one's own request is refused there, not only hidden here.
 */
export function approvalPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.nav({ href: "/console/approvals", label: "Approvals", needs: ["approvals", "break_glass"] });

  routes.page("/console/approvals", ["approvals", "break_glass"], ({ ctx }) => {
    const queue = ctx.caller.capabilities.has("approvals") ? deps.access.pendingApprovals() : [];
    return {
      title: "Approvals",
      body: html`<p>Requests not yet used or expired, oldest first. Read the content: an approval covers exactly these bytes and nothing else.</p>
${queue.map((a) => approvalView(ctx, deps, a))}${queue.length === 0 && html`<p>No request is waiting.</p>`}
${breakGlassSection(ctx, deps)}`,
    };
  });
  breakGlassPages(routes, deps);

  routes.action("/console/approvals/:id/approve", ["approvals"], async ({ params, actor }) => {
    const id = requireId(params.id, "approval_id");
    await deps.access.approve(id, actor());
    return `/console/approvals#${id}`;
  });
}
