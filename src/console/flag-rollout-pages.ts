import { requireCapability } from "../audit/audited-write.js";
import { BulkheadError, invalidArgument } from "../errors.js";
import { flagChange } from "../flags/flag-admin.js";
import type { Flag, FlagRule } from "../flags/flag-store.js";
import { checkId, requireId } from "../validation.js";
import { form, reasonField, type PageContext } from "./console-layout.js";
import { ConsoleRefusal } from "./console-refusal.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { describeRules, FORM_NAMES, nextFlag, rolloutFromForm, rolloutOf, type RolloutFields } from "./flag-rollout.js";
import { html, type Html } from "./html.js";

export const flagPath = (key: string) => `/console/flags/${encodeURIComponent(key)}`;

/** The rollout's inputs, prefilled; also the hidden copy a refusal's "request approval" form carries. */
function rolloutInputs(r: RolloutFields, hidden = false): Html {
  if (hidden) {
    return html`<input type="hidden" name="${FORM_NAMES.percentage}" value="${r.percentage}"><input type="hidden" name="${FORM_NAMES.tenantsAllow}" value="${r.tenantsAllow.join(" ")}">
<input type="hidden" name="${FORM_NAMES.tenantsDeny}" value="${r.tenantsDeny.join(" ")}"><input type="hidden" name="${FORM_NAMES.plans}" value="${r.plans.join(" ")}">`;
  }
  return html`<label>Percentage (0-100, empty: no percentage rule) <input name="${FORM_NAMES.percentage}" type="number" min="0" max="100" value="${r.percentage}"></label>
<label>Allow tenants <input name="${FORM_NAMES.tenantsAllow}" value="${r.tenantsAllow.join(" ")}"></label>
<label>Deny tenants <input name="${FORM_NAMES.tenantsDeny}" value="${r.tenantsDeny.join(" ")}"></label>
<label>Plans <input name="${FORM_NAMES.plans}" value="${r.plans.join(" ")}"></label>`;
}

const ruleList = (rules: readonly FlagRule[]) => html`<ul>${describeRules(rules).map((line) => html`<li>${line}</li>`)}</ul>${rules.length === 0 && html`<p>No rules: on for everyone.</p>`}`;

/** The rules an approval for this flag covers, to prefill the form with exactly what was approved. */
function approvedRules(deps: ConsoleDeps, ctx: PageContext, key: string, approvalId: string): FlagRule[] {
  requireCapability(ctx.caller, "approvals", "read approvals");
  const approval = deps.access.getApproval(requireId(approvalId, "approval_id"));
  if (!approval.action.startsWith(`flag.put:${key}@`)) throw invalidArgument("approval_id", `approves '${approval.action}', not a rollout of flag ${key}`);
  return (JSON.parse(approval.contentJson) as { rules: FlagRule[] }).rules;
}

/** Why the write was refused and the way forward: a second person's approval of exactly this content. */
function approvalHelp(ctx: PageContext, deps: ConsoleDeps, flag: Flag, fields: RolloutFields): Html {
  const proposed = nextFlag(flag, fields);
  const mayRequest = ctx.caller.capabilities.has("approvals");
  return html`<h2>How to get this rollout approved</h2>
<p>Flag <b>${flag.key}</b> is high-risk: taking it to everyone needs a second staff member's approval of exactly this change (the two-person rule).
Request the approval; a different engineer reads it in full on the <a href="/console/approvals">Approvals</a> page and approves it;
then open it there and apply it yourself, once, within 30 minutes. Any other change needs a new approval.</p>
<h3>The change to approve</h3>${ruleList(proposed.rules)}
${mayRequest
    ? form(ctx, `${flagPath(flag.key)}/rollout/approval`, html`${rolloutInputs(fields, true)}${reasonField(deps.reasonCodes)}`, "Request approval")
    : html`<p>Your role may not request approvals: ask an engineer to request it.</p>`}`;
}

/**
 * Rollout changes (percentage, allow and deny lists, plans) through
 * FlagAdmin.putFlag, as AdminService.PutFlag: same validation, same
 * approval rule for a high-risk flag going to everyone, same audit.
 */
export function flagRolloutPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.page("/console/flags/:key", ["flags.write"], ({ ctx, params, query }) => {
    const flag = deps.flags.get(requireId(params.key, "key"));
    const approvalId = query.approval_id ?? "";
    const fields = rolloutOf(approvalId ? approvedRules(deps, ctx, flag.key, approvalId) : flag.rules);
    return {
      title: `Rollout of ${flag.key}`,
      body: html`<table><tbody><tr><th>Type</th><td>${flag.kind}</td></tr><tr><th>Owner</th><td>${flag.owner}</td></tr><tr><th>Risk</th><td>${flag.risk}</td></tr>
<tr><th>State</th><td>${flag.killed ? "killed" : flag.enabled ? "enabled" : "off"}</td></tr></tbody></table>
<h2>Rules now</h2>${ruleList(flag.rules)}
${flag.risk === "high" && html`<p class="notice">High-risk: a rollout to everyone needs a second staff member's approval of exactly that change.</p>`}
${approvalId && html`<p class="notice">Prefilled with what approval <code>${approvalId}</code> covers; applying it spends the approval.</p>`}
<h2>Change the rollout</h2>
${form(ctx, `${flagPath(flag.key)}/rollout`, html`${rolloutInputs(fields)}<label>Approval id (only with an approved request) <input name="approval_id" value="${approvalId}"></label>
${reasonField(deps.reasonCodes)}`, "Change rollout")}
<p>Other rules (entitlement, tags, roles) and the flag's other fields stay as they are.</p>`,
    };
  });

  routes.action("/console/flags/:key/rollout", ["flags.write"], async ({ ctx, params, form: posted, actor }) => {
    const by = actor();
    const flag = deps.flags.get(requireId(params.key, "key"));
    const fields = rolloutFromForm(posted);
    const approvalId = (posted.approval_id ?? "").trim();
    if (approvalId) checkId(approvalId, "approval_id");
    try {
      await deps.flags.putFlag(nextFlag(flag, fields), approvalId, by);
    } catch (error) {
      if (!approvalId && error instanceof BulkheadError && error.code === "APPROVAL_REQUIRED") throw new ConsoleRefusal(error, approvalHelp(ctx, deps, flag, fields));
      throw error;
    }
    return "/console/flags";
  });

  routes.action("/console/flags/:key/rollout/approval", ["approvals"], async ({ ctx, params, form: posted, actor }) => {
    requireCapability(ctx.caller, "flags.write", "request a rollout approval");
    const by = actor();
    const next = nextFlag(deps.flags.get(requireId(params.key, "key")), rolloutFromForm(posted));
    const approval = await deps.access.requestApproval(flagChange(next), by);
    return `/console/approvals#${approval.id}`;
  });
}
