import { invalidArgument } from "../errors.js";
import { requireId } from "../validation.js";
import type { ConsoleRoutes } from "./console-routes.js";
import type { ConsoleDeps } from "./console-deps.js";
import { requireSelected } from "./tenant-pages.js";

/**
 * Impersonation through AccessAdmin.startImpersonation (the same use case as
 * AdminService). The session remembers it for the banner, which every page
 * draws until the expiry, when it ends by itself (console-routes.ts).
 */
export function impersonationPages(routes: ConsoleRoutes, deps: ConsoleDeps): void {
  routes.action("/console/tenants/:id/impersonate", ["impersonate"], async ({ ctx, params, form, actor }) => {
    const tenantId = requireId(params.id, "tenant_id");
    requireSelected(ctx, tenantId);
    const minutes = Number(form.ttl_minutes);
    if (!Number.isInteger(minutes) || minutes <= 0) throw invalidArgument("ttl_minutes", "must be a whole number of minutes, at least 1");
    const asActorId = requireId(form.as_actor_id, "as_actor_id");
    const { session } = await deps.access.startImpersonation(tenantId, asActorId, minutes * 60, actor());
    ctx.session.impersonation = { sessionId: session.id, tenantId, asActorId, expiresAt: session.expiresAt };
    return `/console/tenants/${encodeURIComponent(tenantId)}`;
  });

  routes.action("/console/impersonation/end", ["impersonate"], async ({ ctx, actor }) => {
    const imp = ctx.session.impersonation;
    if (imp) await deps.access.endImpersonation(imp.tenantId, imp.sessionId, actor());
    ctx.session.impersonation = null;
    return "/console/tenants";
  });
}
