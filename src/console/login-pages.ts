import type { FastifyInstance } from "fastify";
import { checkId } from "../validation.js";
import { invalidArgument } from "../errors.js";
import { html } from "./html.js";
import { clearSessionCookie, formOf, requireCsrf, sessionIdOf, setSessionCookie } from "./console-security.js";
import type { ConsoleSessions } from "./console-sessions.js";
import type { ConsoleDeps } from "./console-deps.js";

const NOTICES: Record<string, string> = {
  expired: "Your session expired: sign in again.",
  revoked: "Your credential is no longer valid (disabled or rotated): sign in again.",
  out: "Signed out.",
};

function loginPage(message: string): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · Bulkhead console</title><link rel="stylesheet" href="/console/console.css"></head>
<body><main><h1>Bulkhead console</h1>${message && html`<p class="notice" role="status">${message}</p>`}
<form method="post" action="/console/login">
<label>Staff token <input type="password" name="token" autocomplete="off" required></label>
<label>Operator (only with the shared bootstrap token: who you are) <input name="operator" autocomplete="username"></label>
<button type="submit">Sign in</button></form></main></body></html>`.text;
}

/** Sign-in with a staff token (or the bootstrap token plus the operator's name) and sign-out. */
export function registerLogin(app: FastifyInstance, deps: ConsoleDeps, sessions: ConsoleSessions): void {
  app.get("/console/login", async (request, reply) => {
    const query = request.query as Record<string, string>;
    const notice = Object.keys(NOTICES).find((k) => k in query);
    return reply.type("text/html; charset=utf-8").send(loginPage(notice ? NOTICES[notice]! : ""));
  });
  app.post("/console/login", async (request, reply) => {
    const form = formOf(request);
    const token = form.token ?? "";
    const operator = (form.operator ?? "").trim();
    let caller;
    try {
      caller = deps.auth.authenticate(token, operator);
    } catch {
      return reply.code(401).type("text/html; charset=utf-8").send(loginPage("That token is not a valid staff or admin token."));
    }
    // Like bulkhead-actor on AdminService: a shared credential must name the person behind it.
    if (caller.kind !== "staff") {
      if (!operator) throw invalidArgument("operator", `the ${caller.kind} credential is shared: name the person signing in`);
      checkId(operator, "operator");
    }
    const session = sessions.create(token, operator);
    setSessionCookie(reply, session.id, session.expiresAt - deps.clock.now(), deps.secureCookies ?? false);
    return reply.redirect("/console/tenants", 303);
  });
  app.post("/console/logout", async (request, reply) => {
    const found = sessions.find(sessionIdOf(request));
    if (found && found !== "expired") {
      requireCsrf(formOf(request), found.csrf);
      sessions.end(found.id);
    }
    clearSessionCookie(reply);
    return reply.redirect("/console/login?out=1", 303);
  });
}
