import { status } from "@grpc/grpc-js";
import type { CheckResponse, DeepPartial, Principal, Resource, TenantContext } from "../gen/bulkhead/v1/decision.js";
import { UNAVAILABLE_REASON, type BulkheadClient } from "./bulkhead-client.js";

/**
 * The framework-neutral half of the Express and Fastify adapters: resolve a
 * request's principal into a trusted context, decide a guarded action, and
 * say which HTTP answer each outcome gets. The adapters only move these
 * answers onto their framework's request and reply, so both frameworks
 * answer exactly alike (test/e2e/host-middleware.test.ts runs one table
 * against both).
 */

/** What the host's authentication says about a request: who, in which tenant. `undefined` = nobody signed in. */
export type PrincipalOf<Req> = (request: Req) => DeepPartial<Principal> | undefined | Promise<DeepPartial<Principal> | undefined>;

/** The row a guarded route acts on, read from the host's own database (its `tenantId` is the row's, never the caller's). `undefined` = no such row. */
export type ResourceOf<Req> = (request: Req, context: TenantContext) => DeepPartial<Resource> | undefined | Promise<DeepPartial<Resource> | undefined>;

/** The trusted state a request carries after the tenant-context step. */
export interface RequestTenant {
  /** The context Bulkhead resolved: tenant, actor, role, permissions, plan, region, isolation tier. */
  readonly context: TenantContext;
  /** The principal as the host authenticated it; guards send it unchanged (an API key is re-verified per call). */
  readonly principal: DeepPartial<Principal>;
  /** The client that resolved it, used again by {@link requirePermission}-style guards. */
  readonly client: BulkheadClient;
}

/** An HTTP answer the adapters send verbatim. */
export interface GuardReply {
  status: 401 | 403 | 404 | 503;
  body: { error: "unauthenticated" | "forbidden" | "not_found" | "unavailable" };
}

/**
 * One body for every "not here": an unknown tenant, a tenant the caller is
 * not a member of, another tenant's row and a row that does not exist all
 * look the same, so a caller cannot probe which tenants or ids exist.
 */
export const NOT_FOUND_REPLY: GuardReply = Object.freeze({ status: 404, body: Object.freeze({ error: "not_found" }) }) as GuardReply;
/** Bulkhead did not answer: fail closed, and tell the caller to retry rather than that they may not. */
export const UNAVAILABLE_REPLY: GuardReply = Object.freeze({ status: 503, body: Object.freeze({ error: "unavailable" }) }) as GuardReply;
/** No principal: the host's authentication found nobody. */
export const UNAUTHENTICATED_REPLY: GuardReply = Object.freeze({ status: 401, body: Object.freeze({ error: "unauthenticated" }) }) as GuardReply;
/** A member of this tenant whose role, plan or billing state does not allow the action on a row of their own tenant. */
export const FORBIDDEN_REPLY: GuardReply = Object.freeze({ status: 403, body: Object.freeze({ error: "forbidden" }) }) as GuardReply;

/** Deny reasons that mean "this is not your tenant's": answered 404 like a missing row, never 403. */
export const NOT_FOUND_REASONS: ReadonlySet<string> = new Set(["wrong_tenant", "not_a_member", "membership_inactive", "api_key_invalid"]);

/** Resolves the request's principal; a failure of any kind is a reply, never a context. */
export async function resolveRequestTenant<Req>(client: BulkheadClient, principalOf: PrincipalOf<Req>, request: Req): Promise<RequestTenant | GuardReply> {
  const principal = await principalOf(request);
  if (!principal || !(principal.tenantId || principal.tenantSlug) || !(principal.actorId || principal.apiKey)) return UNAUTHENTICATED_REPLY;
  try {
    const context = await client.resolveContext({ principal });
    return Object.freeze({ context: Object.freeze(context), principal: Object.freeze({ ...principal }), client });
  } catch (error) {
    // NOT_FOUND is the sidecar's one answer for an unknown tenant and a non-member alike; everything else is "did not answer".
    return (error as { code?: unknown })?.code === status.NOT_FOUND ? NOT_FOUND_REPLY : UNAVAILABLE_REPLY;
  }
}

/** Decides `action` on the row `resourceOf` names; `undefined` means allowed, anything else is the reply to send. */
export async function authorizeRequest<Req>(tenant: RequestTenant, action: string, resourceOf: ResourceOf<Req>, request: Req): Promise<GuardReply | undefined> {
  const resource = await resourceOf(request, tenant.context);
  if (!resource) return NOT_FOUND_REPLY;
  const answer = await tenant.client.check({ principal: tenant.principal, action, resource });
  return answer.allow ? undefined : denialReply(answer);
}

/** The HTTP answer for a deny: 503 when Bulkhead did not answer, 404 across the tenant boundary, 403 inside it. */
export function denialReply(answer: CheckResponse): GuardReply {
  const codes = answer.reasons.map((r) => r.code);
  if (codes.includes(UNAVAILABLE_REASON)) return UNAVAILABLE_REPLY;
  if (codes.length === 0 || codes.some((c) => NOT_FOUND_REASONS.has(c))) return NOT_FOUND_REPLY;
  return FORBIDDEN_REPLY;
}

/** Thrown (Express: passed to `next`) when a guard runs on a request the tenant-context step never saw: a wiring mistake, never an allow. */
export class TenantContextMissingError extends Error {
  /** HTTP status frameworks use for a thrown error. */
  readonly statusCode = 500;
  constructor() {
    super("bulkhead: no tenant context on this request; register the tenant-context middleware before requirePermission");
    this.name = "TenantContextMissingError";
  }
}

/** Whether a step's result is a reply rather than a context. */
export function isReply(value: RequestTenant | GuardReply): value is GuardReply {
  return "status" in value;
}
