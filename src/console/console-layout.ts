import { ADMIN_CAPABILITIES, type AdminCapability, type AdminCaller } from "../identity/staff-roles.js";
import { html, type Html } from "./html.js";
import type { ConsoleSession } from "./console-sessions.js";

/** A navigation entry, shown only to callers holding one of its capabilities. */
export interface NavEntry {
  href: string;
  label: string;
  needs: readonly AdminCapability[];
}

export interface PageContext {
  caller: AdminCaller;
  session: ConsoleSession;
  nav: readonly NavEntry[];
  now: number;
  /** The configured reason codes, for forms drawn by the layout itself (ending an impersonation). */
  reasonCodes: readonly string[];
  /** Set once on the page after an impersonation lapsed by itself. */
  notice?: string | undefined;
}

/** A form that posts back with the session's CSRF token; every console form goes through here. */
export function form(ctx: PageContext, action: string, fields: Html, submit: string): Html {
  return html`<form method="post" action="${action}"><input type="hidden" name="csrf" value="${ctx.session.csrf}">${fields}<button type="submit">${submit}</button></form>`;
}

/** A reason field: a configured reason code, then optional free text, as AdminService requires. */
export function reasonField(codes: readonly string[]): Html {
  // No code is preselected: the person has to choose one, and the browser will not send the form until they do.
  return html`<label>Reason <select name="reason_code" required><option value="">choose a reason</option>${codes.map((c) => html`<option value="${c}">${c}</option>`)}</select></label>
<label>Details <input name="reason_text" maxlength="200"></label>`;
}

function banner(ctx: PageContext): Html {
  const imp = ctx.session.impersonation;
  if (!imp) return html``;
  const left = Math.max(0, Math.ceil((imp.expiresAt - ctx.now) / 1000));
  const minutes = `${Math.floor(left / 60)} min ${left % 60} s`;
  // No close button: the banner goes only when the session ends.
  return html`<div class="banner" role="alert" id="impersonation-banner">Viewing as <b>${imp.asActorId}</b> in tenant <b>${imp.tenantId}</b>
 (impersonation by ${ctx.caller.actor}), ${minutes} left, until ${new Date(imp.expiresAt).toISOString()}
${form(ctx, "/console/impersonation/end", reasonField(ctx.reasonCodes), "End impersonation")}</div>`;
}

/** On every page: what this staff role may and may not do, so nobody learns their limits from a refusal. */
function roleLimits(caller: AdminCaller): Html {
  const may = ADMIN_CAPABILITIES.filter((c) => caller.capabilities.has(c));
  const mayNot = ADMIN_CAPABILITIES.filter((c) => !caller.capabilities.has(c));
  return html`<details class="limits" id="role-limits"><summary>What ${caller.role ?? "this credential"} may do</summary>
<p>May: ${may.join(", ") || "nothing"}.</p><p>May not: ${mayNot.join(", ") || "nothing is withheld"}.</p></details>`;
}

export function layout(ctx: PageContext, title: string, body: Html): Html {
  const entries = ctx.nav.filter((e) => e.needs.some((c) => ctx.caller.capabilities.has(c)));
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title} · Bulkhead console</title><link rel="stylesheet" href="/console/console.css"></head>
<body>${banner(ctx)}
<header><nav>${entries.map((e) => html`<a href="${e.href}">${e.label}</a> `)}</nav>
<span class="who">${ctx.caller.actor}${ctx.caller.role && html` (${ctx.caller.role})`}</span>
${roleLimits(ctx.caller)}
${form(ctx, "/console/logout", html``, "Sign out")}</header>
${ctx.notice && html`<p class="notice" role="status">${ctx.notice}</p>`}
<main><h1>${title}</h1>${body}</main></body></html>`;
}
