/**
 * `bulkhead/client/fastify`: tenant context and permission guards for
 * Fastify 5, as hooks. Only Fastify's types are imported; the host's own
 * Fastify runs them, and `bulkhead/client` never loads Fastify.
 *
 * ```ts
 * await app.register(tenantContextPlugin, { client, principalOf: (req) => ({ tenantId: req.params.tenant, actorId: req.user?.id }) });
 * app.delete("/t/:tenant/projects/:id", { preHandler: requirePermission("projects.delete", (req) => projects.ref(req.params.id)) }, handler);
 * ```
 * @packageDocumentation
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { BulkheadClient } from "../bulkhead-client.js";
import type { TenantContext } from "../../gen/bulkhead/v1/decision.js";
import { authorizeRequest, isReply, resolveRequestTenant, TenantContextMissingError, type GuardReply, type PrincipalOf, type RequestTenant, type ResourceOf } from "../request-guard.js";

export { NOT_FOUND_REPLY, UNAVAILABLE_REPLY, UNAUTHENTICATED_REPLY, FORBIDDEN_REPLY, NOT_FOUND_REASONS, TenantContextMissingError } from "../request-guard.js";
export type { GuardReply, PrincipalOf, ResourceOf, RequestTenant } from "../request-guard.js";

/** Options for {@link tenantContextHook} and {@link tenantContextPlugin}. */
export interface TenantContextOptions<Req extends FastifyRequest = FastifyRequest> {
  /** The client that resolves contexts and decides guarded actions. */
  client: BulkheadClient;
  /** Who the host's authentication says the caller is, and in which tenant (from the route or host name, never from the body). */
  principalOf: PrincipalOf<Req>;
}

/** A Fastify hook as these factories return it (usable as `onRequest` or `preHandler`). */
export type FastifyGuardHook<Req extends FastifyRequest = FastifyRequest> = (request: Req, reply: FastifyReply) => Promise<void>;

// Kept beside the request, not on a property a later hook could overwrite.
const tenants = new WeakMap<object, RequestTenant>();

/**
 * An `onRequest` (or `preHandler`, when `principalOf` needs params) hook
 * that resolves the caller and attaches the trusted context as
 * `request.tenantContext` (read-only). 404 `{"error":"not_found"}` for an
 * unknown tenant and a non-member alike, 401 for nobody, 503 when Bulkhead
 * does not answer; the route runs only with a resolved context.
 */
export function tenantContextHook<Req extends FastifyRequest = FastifyRequest>(options: TenantContextOptions<Req>): FastifyGuardHook<Req> {
  return async (request, reply) => {
    const resolved = await resolveRequestTenant(options.client, options.principalOf, request);
    if (isReply(resolved)) return send(reply, resolved);
    tenants.set(request, resolved);
    Object.defineProperty(request, "tenantContext", { value: resolved.context, writable: false, configurable: false, enumerable: true });
  };
}

/**
 * Registers {@link tenantContextHook} as a `preHandler` (after routing, so
 * `principalOf` can read route params) on the scope it is registered in
 * and its parent, as fastify-plugin would (`skip-override`).
 */
export const tenantContextPlugin = Object.assign(
  async function tenantContextPlugin(app: FastifyInstance, options: TenantContextOptions) {
    app.addHook("preHandler", tenantContextHook(options));
  },
  { [Symbol.for("skip-override")]: true, [Symbol.for("fastify.display-name")]: "bulkhead-tenant-context" },
);

/**
 * A `preHandler` that lets the request through only when Bulkhead allows
 * `action` on the row `resourceOf` reads from the host's database. 404 for
 * a missing row and for another tenant's row, 403 for a member whose role
 * or plan does not allow it, 503 when Bulkhead does not answer. Without the
 * tenant-context hook before it, it throws {@link TenantContextMissingError}
 * (Fastify answers 500) and the route never runs.
 */
export function requirePermission<Req extends FastifyRequest = FastifyRequest>(action: string, resourceOf: ResourceOf<Req>): FastifyGuardHook<Req> {
  return async (request, reply) => {
    const tenant = tenants.get(request);
    if (!tenant) throw new TenantContextMissingError();
    const denied = await authorizeRequest(tenant, action, resourceOf, request);
    if (denied) return send(reply, denied);
  };
}

/** The trusted context the hook attached; throws {@link TenantContextMissingError} when it did not run. */
export function tenantContextOf(request: FastifyRequest): TenantContext {
  const tenant = tenants.get(request);
  if (!tenant) throw new TenantContextMissingError();
  return tenant.context;
}

async function send(reply: FastifyReply, denied: GuardReply): Promise<void> {
  await reply.code(denied.status).send(denied.body);
}
