/**
 * `bulkhead/client/express`: tenant context and permission guards for
 * Express 4 and 5. Typed structurally, so neither `express` nor
 * `@types/express` is needed to load or compile against it; the host brings
 * its own Express.
 *
 * ```ts
 * app.use(tenantContext({ client, principalOf: (req) => ({ tenantId: req.params.tenant, actorId: req.user?.id }) }));
 * app.delete("/t/:tenant/projects/:id", requirePermission("projects.delete", (req) => projects.ref(req.params.id)), handler);
 * ```
 * @packageDocumentation
 */
import type { BulkheadClient } from "../bulkhead-client.js";
import type { TenantContext } from "../../gen/bulkhead/v1/decision.js";
import {
  authorizeRequest,
  isReply,
  resolveRequestTenant,
  TenantContextMissingError,
  type GuardReply,
  type PrincipalOf,
  type RequestTenant,
  type ResourceOf,
} from "../request-guard.js";

export { NOT_FOUND_REPLY, UNAVAILABLE_REPLY, UNAUTHENTICATED_REPLY, FORBIDDEN_REPLY, NOT_FOUND_REASONS, TenantContextMissingError } from "../request-guard.js";
export type { GuardReply, PrincipalOf, ResourceOf, RequestTenant } from "../request-guard.js";

/** The part of an Express request these middlewares touch. */
export type ExpressRequest = object;
/** The part of an Express response these middlewares use. */
export interface ExpressResponse {
  status(code: number): { json(body: unknown): unknown };
}
/** Express's `next`: no argument continues, an error skips to the error handlers. */
export type ExpressNext = (error?: unknown) => void;
/** An Express middleware as these factories return it. */
export type ExpressMiddleware<Req extends ExpressRequest = ExpressRequest> = (req: Req, res: ExpressResponse, next: ExpressNext) => Promise<void>;

/** Options for {@link tenantContext}. */
export interface TenantContextOptions<Req extends ExpressRequest> {
  /** The client that resolves contexts and decides guarded actions. */
  client: BulkheadClient;
  /** Who the host's authentication says the caller is, and in which tenant (from the route or host name, never from the body). */
  principalOf: PrincipalOf<Req>;
}

// The trusted state lives here, not on a property a body parser or later
// middleware could overwrite; `req.tenantContext` is a read-only view of it.
const tenants = new WeakMap<object, RequestTenant>();

/**
 * Resolves the caller with ResolveContext and attaches the trusted context
 * as `req.tenantContext` (read-only). Answers 404 `{"error":"not_found"}`
 * for an unknown tenant and a non-member alike, 401 when `principalOf`
 * finds nobody, 503 when Bulkhead does not answer; only a resolved context
 * reaches the next handler.
 */
export function tenantContext<Req extends ExpressRequest>(options: TenantContextOptions<Req>): ExpressMiddleware<Req> {
  return async (req, res, next) => {
    let resolved: RequestTenant | GuardReply;
    try {
      resolved = await resolveRequestTenant(options.client, options.principalOf, req);
    } catch (error) {
      return next(error);
    }
    if (isReply(resolved)) return send(res, resolved);
    tenants.set(req, resolved);
    Object.defineProperty(req, "tenantContext", { value: resolved.context, writable: false, configurable: false, enumerable: true });
    next();
  };
}

/**
 * Lets the request through only when Bulkhead allows `action` on the row
 * `resourceOf` reads from the host's database. 404 for a missing row and
 * for another tenant's row (same body as an unknown tenant), 403 for a
 * member whose role or plan does not allow it, 503 when Bulkhead does not
 * answer. Without {@link tenantContext} before it, it passes a
 * {@link TenantContextMissingError} to `next` and never calls the route.
 */
export function requirePermission<Req extends ExpressRequest>(action: string, resourceOf: ResourceOf<Req>): ExpressMiddleware<Req> {
  return async (req, res, next) => {
    const tenant = tenants.get(req);
    if (!tenant) return next(new TenantContextMissingError());
    let reply: GuardReply | undefined;
    try {
      reply = await authorizeRequest(tenant, action, resourceOf, req);
    } catch (error) {
      return next(error);
    }
    if (reply) return send(res, reply);
    next();
  };
}

/** The trusted context {@link tenantContext} attached; throws {@link TenantContextMissingError} when it did not run. */
export function tenantContextOf(req: ExpressRequest): TenantContext {
  const tenant = tenants.get(req);
  if (!tenant) throw new TenantContextMissingError();
  return tenant.context;
}

function send(res: ExpressResponse, reply: GuardReply): void {
  res.status(reply.status).json(reply.body);
}
