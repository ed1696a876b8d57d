import type { FastifyInstance } from "fastify";
import { asBulkheadError, httpStatusOf } from "../server/http/http-errors.js";
import { CONSOLE_CSS } from "./console.css.js";
import { consoleRoutes, type ConsoleRoutes } from "./console-routes.js";
import { secureConsoleScope } from "./console-security.js";
import { ConsoleSessions } from "./console-sessions.js";
import type { ConsoleDeps } from "./console-deps.js";
import { html } from "./html.js";
import { registerLogin } from "./login-pages.js";
import { tenantPages } from "./tenant-pages.js";
import { impersonationPages } from "./impersonation-pages.js";
import { decisionPages } from "./decision-pages.js";
import { flagPages } from "./flag-pages.js";
import { billingPages } from "./billing-pages.js";
import { playgroundPages } from "./playground-pages.js";
import { fleetPages } from "./fleet-pages.js";
import { ConsoleRefusal } from "./console-refusal.js";
import { approvalPages } from "./approval-pages.js";
import { auditPages } from "./audit-pages.js";

/** One module per page group; a later group is one more entry here. */
const PAGE_GROUPS: readonly ((routes: ConsoleRoutes, deps: ConsoleDeps) => void)[] = [
  tenantPages, impersonationPages, decisionPages, flagPages, billingPages, playgroundPages, fleetPages, approvalPages, auditPages,
];

/**
 * The operations console under /console/ (BULKHEAD_CONSOLE), as an
 * encapsulated plugin: its form parser, headers and error page stay inside
 * its scope and never touch OFREP, AuthZEN or the webhook.
 */
export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps, sessions = new ConsoleSessions(deps.clock)): Promise<void> {
  await app.register(async (scope) => {
    secureConsoleScope(scope);
    // Errors are pages too, with the stable code; nothing that fails is ever shown as done.
    scope.setErrorHandler((thrown, _request, reply) => {
      const error = asBulkheadError(thrown);
      const status = (thrown as { statusCode?: number }).statusCode === 415 ? 415 : httpStatusOf(error);
      return reply.code(status).type("text/html; charset=utf-8").send(
        html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Refused · Bulkhead console</title><link rel="stylesheet" href="/console/console.css"></head>
<body><main><h1>Refused</h1><p class="error" role="alert"><code>${error.code}</code> ${error.message}</p>${thrown instanceof ConsoleRefusal && thrown.help}<p><a href="/console/tenants">Back</a></p></main></body></html>`.text,
      );
    });
    scope.get("/console/console.css", async (_request, reply) => reply.type("text/css; charset=utf-8").send(CONSOLE_CSS));
    scope.get("/console/", async (_request, reply) => reply.redirect("/console/tenants", 303));
    scope.get("/console", async (_request, reply) => reply.redirect("/console/tenants", 303));
    registerLogin(scope, deps, sessions);
    const routes = consoleRoutes(scope, deps, sessions);
    for (const group of PAGE_GROUPS) group(routes, deps);
  });
}
