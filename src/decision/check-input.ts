import { ACTOR_TYPES, SOURCES, type ActorType, type Principal, type Source } from "../context/tenant-context.js";
import { invalidArgument } from "../errors.js";
import { looksLikeApiKey } from "../identity/api-keys.js";
import { checkId, checkPattern, checkToken, requireAmount } from "../validation.js";

export interface ResourceRef {
  type: string;
  id: string;
  /** The resource's own tenant as the host database knows it; "" when missing. */
  tenantId: string;
  ownerId: string;
  attributes: Record<string, unknown>;
}

/** A validated Check request in domain terms. */
export interface CheckInput {
  principal: Principal;
  action: string;
  resource: ResourceRef;
  minRevision: number;
  consume: number;
  idempotencyKey: string;
  /**
   * What the caller asserts about the subject, the action and the request,
   * passed to the policy as `input.asserted` and never into the trusted
   * context: AuthZEN carries these as `properties` and `context`, gRPC Check
   * has none. A policy may read them (a soft delete flag); membership, role
   * and permissions still come from the store only.
   */
  asserted?: AssertedAttributes;
}

export interface AssertedAttributes {
  subject: Record<string, unknown>;
  action: Record<string, unknown>;
  context: Record<string, unknown>;
}

/** The request as it arrives from any transport, before validation. */
export interface RawPrincipal {
  tenantId?: string;
  tenantSlug?: string;
  actorId?: string;
  actorType?: string;
  apiKey?: string;
  sessionId?: string;
  requestId?: string;
  source?: string;
}

export interface RawCheck {
  principal?: RawPrincipal | undefined;
  action?: string;
  resource?: { type?: string; id?: string; tenantId?: string; ownerId?: string; attributes?: unknown } | undefined;
  minRevision?: number;
  consume?: number;
  idempotencyKey?: string;
  asserted?: { subject?: unknown; action?: unknown; context?: unknown };
}

export const LIMITS = {
  attributesBytes: 16 * 1024,
  /** Deeper input is no real resource and only costs stack in the policy engine. */
  attributesDepth: 16,
  batchSize: 1000,
} as const;

const SLUG = /^[a-z0-9][a-z0-9-]*$/;
const ACTION = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;

/**
 * Validates a raw request. Throws INVALID_ARGUMENT naming the first bad field
 * (prefixed with `prefix`, e.g. `checks[3].`); nothing is evaluated then.
 */
export function validateCheck(raw: RawCheck, prefix = ""): CheckInput {
  const principal = validatePrincipal(raw.principal, `${prefix}principal`);
  const action = raw.action ?? "";
  if (action === "") throw invalidArgument(`${prefix}action`, "is required");
  checkPattern(action, ACTION, `${prefix}action`, "must look like 'projects.read'");
  const resource = validateResource(raw.resource, `${prefix}resource`);
  const consume = requireAmount(raw.consume, `${prefix}consume`, 0);
  const idempotencyKey = raw.idempotencyKey ?? "";
  checkToken(idempotencyKey, `${prefix}idempotency_key`);
  // Consuming without a key would count a retried call twice.
  if (consume > 0 && idempotencyKey === "") {
    throw invalidArgument(`${prefix}idempotency_key`, "is required when consume is set");
  }
  const input: CheckInput = { principal, action, resource, minRevision: validateRevision(raw.minRevision, `${prefix}min_revision`), consume, idempotencyKey };
  if (raw.asserted) input.asserted = validateAsserted(raw.asserted, prefix);
  return input;
}

/** Asserted attributes obey the bounds of resource attributes, each part on its own. */
function validateAsserted(raw: NonNullable<RawCheck["asserted"]>, prefix: string): AssertedAttributes {
  return {
    subject: checkAttributes(raw.subject ?? {}, `${prefix}subject.properties`),
    action: checkAttributes(raw.action ?? {}, `${prefix}action.properties`),
    context: checkAttributes(raw.context ?? {}, `${prefix}context`),
  };
}

export function validatePrincipal(raw: RawPrincipal | undefined, field = "principal"): Principal {
  if (!raw) throw invalidArgument(field, "is required");
  const apiKey = raw.apiKey ?? "";
  if (apiKey && !looksLikeApiKey(apiKey)) throw invalidArgument(`${field}.api_key`, "is not a Bulkhead API key");
  const tenantId = raw.tenantId ?? "";
  const tenantSlug = raw.tenantSlug ?? "";
  // An API key names its own tenant; a tenant in the request is then only a claim to check.
  if (tenantId && tenantSlug) throw invalidArgument(`${field}.tenant_id`, "exactly one of tenant_id and tenant_slug is required");
  if (!apiKey && !tenantId && !tenantSlug) {
    throw invalidArgument(`${field}.tenant_id`, "exactly one of tenant_id and tenant_slug is required");
  }
  if (tenantId) checkId(tenantId, `${field}.tenant_id`);
  if (tenantSlug) checkPattern(tenantSlug, SLUG, `${field}.tenant_slug`, "must be lowercase letters, digits and '-'");
  const actorId = raw.actorId ?? "";
  if (!apiKey && actorId === "") throw invalidArgument(`${field}.actor_id`, "is required");
  if (actorId) checkId(actorId, `${field}.actor_id`);
  const actorType = (raw.actorType || (apiKey ? "api_key" : "user")) as ActorType;
  if (!ACTOR_TYPES.includes(actorType)) {
    throw invalidArgument(`${field}.actor_type`, `must be one of ${ACTOR_TYPES.join(", ")}`);
  }
  if (apiKey && actorType !== "api_key") throw invalidArgument(`${field}.actor_type`, "must be api_key (or empty) with an api_key");
  const source = (raw.source || (apiKey ? "api_key" : "workspace_route")) as Source;
  if (!SOURCES.includes(source)) throw invalidArgument(`${field}.source`, `must be one of ${SOURCES.join(", ")}`);
  const sessionId = raw.sessionId ?? "";
  const requestId = raw.requestId ?? "";
  checkToken(sessionId, `${field}.session_id`);
  checkToken(requestId, `${field}.request_id`);
  return { tenantId, tenantSlug, actorId, actorType, apiKey, sessionId, requestId, source };
}

export function validateRevision(value: number | undefined, field: string): number {
  const revision = value ?? 0;
  if (!Number.isSafeInteger(revision) || revision < 0) throw invalidArgument(field, "must be a non-negative integer");
  return revision;
}

function validateResource(raw: RawCheck["resource"], field: string): ResourceRef {
  if (!raw) throw invalidArgument(field, "is required");
  const type = raw.type ?? "";
  if (type === "") throw invalidArgument(`${field}.type`, "is required");
  checkId(type, `${field}.type`);
  const id = raw.id ?? "";
  const tenantId = raw.tenantId ?? "";
  const ownerId = raw.ownerId ?? "";
  if (id) checkId(id, `${field}.id`);
  // A missing tenant_id is not an error: the policy denies it with
  // resource_tenant_missing, which is the answer hosts need to see.
  if (tenantId) checkId(tenantId, `${field}.tenant_id`);
  if (ownerId) checkId(ownerId, `${field}.owner_id`);
  const attributes = checkAttributes(raw.attributes ?? {}, `${field}.attributes`);
  return { type, id, tenantId, ownerId, attributes };
}

/** An object of caller-supplied attributes, bounded in depth and size. */
function checkAttributes(attributes: unknown, field: string): Record<string, unknown> {
  if (typeof attributes !== "object" || attributes === null || Array.isArray(attributes)) {
    throw invalidArgument(field, "must be an object");
  }
  if (depthOf(attributes) > LIMITS.attributesDepth) {
    throw invalidArgument(field, `must nest at most ${LIMITS.attributesDepth} levels deep`);
  }
  if (Buffer.byteLength(JSON.stringify(attributes)) > LIMITS.attributesBytes) {
    throw invalidArgument(field, `must be at most ${LIMITS.attributesBytes} bytes as JSON`);
  }
  return attributes as Record<string, unknown>;
}

/** How deeply objects and arrays nest in a JSON-like value (a scalar is 0); stops counting past 64. */
function depthOf(value: unknown, depth = 0): number {
  if (typeof value !== "object" || value === null || depth > 64) return depth;
  let deepest = depth + 1;
  for (const child of Object.values(value)) deepest = Math.max(deepest, depthOf(child, depth + 1));
  return deepest;
}
