import type { Decision } from "../../../decision/decider.js";
import { validateCheck, type CheckInput } from "../../../decision/check-input.js";
import { MEMBER_ACTOR_TYPES } from "../../../directory/directory-store.js";
import { BulkheadError, invalidArgument } from "../../../errors.js";
import { checkToken } from "../../../validation.js";
import type { CompleteEvaluation, Properties } from "./authzen-request.js";

/** AuthZEN subject types: the actor types a membership can have (an API key or staff needs more than an id). */
export const SUBJECT_TYPES = MEMBER_ACTOR_TYPES;

/** How a deployment names tenants over AuthZEN (docs/decisions.md, ADR 70). */
export interface AuthzenTenancy {
  /** The tenant of a request that names none; unset = such a request is a 400. */
  defaultTenant?: string | undefined;
  /** The tenant of a per-tenant PDP path (`/t/{tenant}/access/v1/...`): the only tenant it answers for. */
  pathTenant?: string | undefined;
}

/**
 * The tenant a request is about. On a tenant path, that tenant, and a
 * `tenant_id` in the subject or resource naming another one is
 * INVALID_ARGUMENT (a request is never moved to another tenant, nor its
 * claim silently dropped). Elsewhere `subject.properties.tenant_id`, else
 * `resource.properties.tenant_id`, else the configured default. Nothing
 * else, and never a guess: no tenant is INVALID_ARGUMENT, never an answer.
 */
export function tenantOf(subject: Properties | undefined, resource: Properties | undefined, tenancy: AuthzenTenancy, prefix = ""): string {
  const subjectField = `${prefix}subject.properties.tenant_id`;
  const resourceField = `${prefix}resource.properties.tenant_id`;
  const subjectClaim = tenantClaim(subject, subjectField);
  const resourceClaim = tenantClaim(resource, resourceField);
  if (tenancy.pathTenant !== undefined) {
    for (const [claim, field] of [[subjectClaim, subjectField], [resourceClaim, resourceField]] as const) {
      if (claim !== undefined && claim !== tenancy.pathTenant) {
        throw invalidArgument(field, `names tenant ${claim}, but this is tenant ${tenancy.pathTenant}'s PDP path (/t/${tenancy.pathTenant}); it answers for that tenant only`);
      }
    }
    return tenancy.pathTenant;
  }
  const tenant = subjectClaim ?? resourceClaim ?? tenancy.defaultTenant;
  if (tenant === undefined) {
    throw invalidArgument(subjectField, "is required (or resource.properties.tenant_id): this PDP has no default tenant");
  }
  return tenant;
}

function tenantClaim(properties: Properties | undefined, field: string): string | undefined {
  const value = properties?.tenant_id;
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw invalidArgument(field, "must be a non-empty string");
  return value;
}

/**
 * An AuthZEN evaluation as a Check. The subject is the actor of the tenant;
 * the resource keeps its own `tenant_id` (or the tenant of the PDP path, or
 * in a single-tenant deployment the default tenant), so a resource of another tenant is `wrong_tenant`
 * exactly as over gRPC. `context.min_revision` is Check's read-your-writes
 * token. Properties reach the policy as caller assertions only.
 */
export function toCheckInput(e: CompleteEvaluation, tenancy: AuthzenTenancy, requestId: string, prefix = ""): CheckInput {
  const tenantId = tenantOf(e.subject.properties, e.resource.properties, tenancy, prefix);
  if (!(SUBJECT_TYPES as readonly string[]).includes(e.subject.type)) {
    throw invalidArgument(`${prefix}subject.type`, `must be one of ${SUBJECT_TYPES.join(", ")}`);
  }
  const { tenant_id: resourceTenant, owner_id: ownerId, ...attributes } = e.resource.properties;
  const { tenant_id: _subjectTenant, ...subjectProperties } = e.subject.properties;
  try {
    return validateCheck({
      principal: { tenantId, actorId: e.subject.id, actorType: e.subject.type, requestId, source: "workspace_route" },
      action: e.action.name,
      resource: {
        type: e.resource.type,
        id: e.resource.id,
        tenantId: typeof resourceTenant === "string" ? resourceTenant : (tenancy.pathTenant ?? tenancy.defaultTenant ?? ""),
        ownerId: typeof ownerId === "string" ? ownerId : "",
        attributes,
      },
      minRevision: minRevisionOf(e.context, prefix),
      asserted: { subject: subjectProperties, action: e.action.properties, context: e.context },
    });
  } catch (error) {
    throw renamed(error, prefix);
  }
}

function minRevisionOf(context: Properties, prefix: string): number {
  const value = context.min_revision;
  if (value === undefined) return 0;
  const revision = typeof value === "string" && /^\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 0) {
    throw invalidArgument(`${prefix}context.min_revision`, "must be a non-negative integer (or its decimal string)");
  }
  return revision;
}

/** Check's field names -> the AuthZEN names the caller sent. */
const FIELD_NAMES: Record<string, string> = {
  "principal.tenant_id": "subject.properties.tenant_id",
  "principal.actor_id": "subject.id",
  "principal.actor_type": "subject.type",
  action: "action.name",
  "resource.tenant_id": "resource.properties.tenant_id",
  "resource.owner_id": "resource.properties.owner_id",
  "resource.attributes": "resource.properties",
};

function renamed(error: unknown, prefix: string): unknown {
  if (!(error instanceof BulkheadError) || error.code !== "REQUEST_INVALID_ARGUMENT" || !error.field) return error;
  const field = error.field.startsWith(prefix) ? error.field.slice(prefix.length) : error.field;
  const name = FIELD_NAMES[field];
  if (!name) return error;
  return invalidArgument(`${prefix}${name}`, error.message.slice(error.message.indexOf(": ") + 2));
}

/** The X-Request-ID as Check's request id, when it is one Check accepts (it is echoed either way). */
export function requestIdOf(header: unknown): string {
  if (typeof header !== "string") return "";
  try {
    checkToken(header, "X-Request-ID");
    return header;
  } catch {
    return "";
  }
}

/** An AuthZEN decision: Check's answer, its reasons and revisions in `context`. */
export function toEvaluationResponse(decision: Decision): { decision: boolean; context: Properties } {
  return {
    decision: decision.allow,
    context: {
      decision_id: decision.decisionId,
      reasons: decision.reasons.map((r) => ({ code: r.code, message: r.message, details: r.details })),
      policy_revision: decision.policyRevision,
      store_revision: decision.storeRevision,
    },
  };
}

/** A batch item that failed alone: closed (`decision: false`), the error in its context. */
export function failedItem(error: BulkheadError): { decision: false; context: Properties } {
  return { decision: false, context: { error: { code: error.code, message: error.message, ...(error.field && { field: error.field }) } } };
}
