import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AdminActor } from "../audit/audited-write.js";
import { requireCapability } from "../audit/audited-write.js";
import { validateReason } from "../directory/admin-input.js";
import type { AdminCapability } from "../identity/staff-roles.js";
import { layout, type NavEntry, type PageContext } from "./console-layout.js";
import { clearSessionCookie, formOf, requireCsrf, sessionIdOf } from "./console-security.js";
import type { ConsoleSession, ConsoleSessions } from "./console-sessions.js";
import type { ConsoleDeps } from "./console-deps.js";
import type { Html } from "./html.js";

/** What a page handler returns: a title and body for the layout. */
export interface Page {
  title: string;
  body: Html;
}

/** A signed-in request: the re-authenticated caller, the session and the form (for POSTs). */
export interface ConsoleRequest {
  ctx: PageContext;
  params: Record<string, string>;
  query: Record<string, string>;
  form: Record<string, string>;
  /** The caller as an admin actor with the form's reason, validated against the configured codes. */
  actor(): AdminActor;
}

/**
 * How a page group (one module per group: tenants, impersonation, later
 * billing or flags) adds itself: nav entries and routes that are already
 * authenticated, capability-checked and, for POSTs, CSRF-checked.
 */
export interface ConsoleRoutes {
  nav(entry: NavEntry): void;
  page(path: string, needs: readonly AdminCapability[], handler: (r: ConsoleRequest) => Page | Promise<Page>): void;
  /** Returns where to go next (a 303 redirect), so a reload never posts twice. */
  action(path: string, needs: readonly AdminCapability[], handler: (r: ConsoleRequest) => string | Promise<string>): void;
  /** A POST answered with a file to save (Content-Disposition: attachment), CSRF-checked like every action. */
  download(path: string, needs: readonly AdminCapability[], handler: (r: ConsoleRequest) => Promise<ConsoleFile>): void;
}

export interface ConsoleFile {
  filename: string;
  contentType: string;
  body: string;
}

export function consoleRoutes(app: FastifyInstance, deps: ConsoleDeps, sessions: ConsoleSessions): ConsoleRoutes {
  const nav: NavEntry[] = [];
  const signedIn = (request: FastifyRequest, reply: FastifyReply): PageContext | null => {
    const found = sessions.find(sessionIdOf(request));
    if (found === undefined || found === "expired") {
      clearSessionCookie(reply);
      void reply.redirect(found === "expired" ? "/console/login?expired=1" : "/console/login", 303);
      return null;
    }
    // Every request: a disabled staff member or a rotated token loses access at once.
    let caller;
    try {
      caller = deps.auth.authenticate(found.token, found.operator);
    } catch {
      sessions.end(found.id);
      clearSessionCookie(reply);
      void reply.redirect("/console/login?revoked=1", 303);
      return null;
    }
    const now = deps.clock.now();
    return { caller, session: found, nav, now, reasonCodes: deps.reasonCodes, notice: lapsedImpersonation(found, now) };
  };
  const requestOf = (ctx: PageContext, request: FastifyRequest, form: Record<string, string>): ConsoleRequest => ({
    ctx, form, params: request.params as Record<string, string>, query: request.query as Record<string, string>,
    actor: () => ({ caller: ctx.caller, reason: validateReason(reasonOf(form), deps.reasonCodes), source: "console" }),
  });
  /** Signed in, CSRF-checked, capable: what every POST passes before its handler runs. */
  const posted = (path: string, needs: readonly AdminCapability[], request: FastifyRequest, reply: FastifyReply): ConsoleRequest | null => {
    const ctx = signedIn(request, reply);
    if (!ctx) return null;
    const form = formOf(request);
    requireCsrf(form, ctx.session.csrf);
    requireCapability(ctx.caller, needs, `post ${path}`);
    return requestOf(ctx, request, form);
  };
  return {
    nav: (entry) => nav.push(entry),
    page: (path, needs, handler) =>
      app.get(path, async (request, reply) => {
        const ctx = signedIn(request, reply);
        if (!ctx) return reply;
        requireCapability(ctx.caller, needs, `open ${path}`);
        // Awaited: an audited read (decisions) or one that asks NATS (fleet) finishes, or fails as a page, first.
        const page = await handler(requestOf(ctx, request, {}));
        return reply.type("text/html; charset=utf-8").send(layout(ctx, page.title, page.body).text);
      }),
    action: (path, needs, handler) =>
      app.post(path, async (request, reply) => {
        const r = posted(path, needs, request, reply);
        if (!r) return reply;
        // Awaited: a use case that writes through the command path (FlagAdmin) finishes, or fails as a page, before the redirect.
        return reply.redirect(await handler(r), 303);
      }),
    download: (path, needs, handler) =>
      app.post(path, async (request, reply) => {
        const r = posted(path, needs, request, reply);
        if (!r) return reply;
        const file = await handler(r);
        const filename = file.filename.replace(/[^A-Za-z0-9._-]/g, "_");
        return reply.header("content-disposition", `attachment; filename="${filename}"`).type(file.contentType).send(file.body);
      }),
  };
}

/** "code" or "code: details", from the reason select and the free-text field. */
function reasonOf(form: Record<string, string>): string {
  const code = (form.reason_code ?? "").trim();
  const text = (form.reason_text ?? "").trim();
  return text ? `${code}: ${text}` : code;
}

/** Clears an impersonation past its expiry and says so once: it ended by itself, not by a click. */
function lapsedImpersonation(session: ConsoleSession, now: number): string | undefined {
  const imp = session.impersonation;
  if (!imp || imp.expiresAt > now) return undefined;
  session.impersonation = null;
  return `Impersonation of ${imp.asActorId} in ${imp.tenantId} ended at ${new Date(imp.expiresAt).toISOString()} (it expired).`;
}
