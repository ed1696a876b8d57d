import { validateCheck, type CheckInput } from "../decision/check-input.js";
import type { Decision } from "../decision/decider.js";
import { invalidArgument } from "../errors.js";
import { selectedTenant } from "./decision-pages.js";
import { form } from "./console-layout.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleSession } from "./console-sessions.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html } from "./html.js";

/** The last explanation of a session, shown once after the POST's redirect (post/redirect/get). */
interface Explained {
  tenantId: string;
  input: CheckInput;
  decision: Decision;
  attributes: string;
}

const ACTOR_TYPES = ["user", "service_account", "system"] as const;

/**
 * The form as a Check of the selected tenant's principal. The resource's
 * tenant is the form's (default: the selected one), so a resource of
 * another tenant is asked about, and denied, exactly as a Check would be.
 */
function checkOf(tenantId: string, f: Record<string, string>): CheckInput {
  let attributes: unknown = {};
  const text = (f.attributes ?? "").trim();
  if (text) {
    try {
      attributes = JSON.parse(text);
    } catch {
      throw invalidArgument("resource.attributes", "must be a JSON object");
    }
  }
  return validateCheck({
    principal: { tenantId, actorId: f.actor_id ?? "", actorType: f.actor_type || "user" },
    action: f.action ?? "",
    resource: { type: f.resource_type ?? "", id: f.resource_id ?? "", tenantId: (f.resource_tenant_id ?? "").trim() || tenantId, ownerId: f.owner_id ?? "", attributes },
  });
}

/**
 * The Check playground (ADR 90, audit.read): a request of the selected
 * tenant evaluated against the live policy and store by Decider.explain,
 * with its ordered reasons and the revisions it was decided at. It
 * consumes nothing and logs no decision; its only write is the
 * check.explain admin_audit row, made before it evaluates.
 */
export function playgroundPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  const last = new WeakMap<ConsoleSession, Explained>();
  routes.nav({ href: "/console/playground", label: "Playground", needs: ["audit.read"] });

  routes.page("/console/playground", ["audit.read"], ({ ctx }) => {
    const tenantId = selectedTenant(ctx);
    const shown = last.get(ctx.session);
    // Never another tenant's answer: a result made before the selection changed is dropped.
    const result = shown?.tenantId === tenantId ? shown : undefined;
    const v = (name: keyof typeof defaults) => (result ? defaults[name](result) : "");
    const fields = html`<label>Actor <input name="actor_id" required value="${v("actor_id")}"></label>
<label>Actor type <select name="actor_type">${ACTOR_TYPES.map((t) => html`<option value="${t}"${t === v("actor_type") && html` selected`}>${t}</option>`)}</select></label>
<label>Action <input name="action" required value="${v("action")}"></label>
<label>Resource type <input name="resource_type" required value="${v("resource_type")}"></label><label>Resource id <input name="resource_id" value="${v("resource_id")}"></label>
<label>Resource tenant <input name="resource_tenant_id" placeholder="${tenantId}" value="${v("resource_tenant_id")}"></label><label>Owner <input name="owner_id" value="${v("owner_id")}"></label>
<label>Attributes (JSON) <textarea name="attributes" rows="3">${v("attributes")}</textarea></label>`;
    return {
      title: `Check playground in ${tenantId}`,
      body: html`<p>Evaluates one Check as a member of <b>${tenantId}</b> against the live policy and store. Nothing is consumed and no decision is logged;
the request is recorded in the admin audit (<code>check.explain</code>).</p>
${form(ctx, "/console/playground", fields, "Explain")}${result && explained(result)}`,
    };
  });

  routes.action("/console/playground", ["audit.read"], async ({ ctx, form: f }) => {
    // Dropped first: a request that fails never leaves an earlier answer looking like its own.
    last.delete(ctx.session);
    const tenantId = selectedTenant(ctx);
    const input = checkOf(tenantId, f);
    const decision = await deps.decisionAccess.explain(input, { caller: ctx.caller, source: "console" });
    last.set(ctx.session, { tenantId, input, decision, attributes: (f.attributes ?? "").trim() });
    return "/console/playground";
  });
}

const defaults = {
  actor_id: (r: Explained) => r.input.principal.actorId,
  actor_type: (r: Explained) => r.input.principal.actorType,
  action: (r: Explained) => r.input.action,
  resource_type: (r: Explained) => r.input.resource.type,
  resource_id: (r: Explained) => r.input.resource.id,
  resource_tenant_id: (r: Explained) => (r.input.resource.tenantId === r.tenantId ? "" : r.input.resource.tenantId),
  owner_id: (r: Explained) => r.input.resource.ownerId,
  attributes: (r: Explained) => r.attributes,
};

function explained({ input, decision: d }: Explained) {
  const r = input.resource;
  return html`<h2 id="answer">${d.allow ? "Allow" : "Deny"}</h2>
<p><code>${input.principal.actorId}</code> (${input.principal.actorType}) <code>${input.action}</code> on <code>${r.type}/${r.id}</code> in <code>${r.tenantId}</code></p>
<table><tbody><tr><th>Result</th><td id="result">${d.allow ? "allow" : "deny"}</td></tr><tr><th>Policy revision</th><td id="policy-revision">${d.policyRevision}</td></tr>
<tr><th>Store revision</th><td id="store-revision">${d.storeRevision}</td></tr></tbody></table>
<h2>Reasons, in the policy's order</h2>${d.reasons.length === 0 ? html`<p>No reasons (an allow carries none).</p>` : html`<ol id="reasons">${d.reasons.map((x) => html`<li><code>${x.code}</code> ${x.message}</li>`)}</ol>`}`;
}
