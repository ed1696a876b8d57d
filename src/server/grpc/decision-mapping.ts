import type { ResolvedContext, Decision } from "../../decision/decider.js";
import type { RawCheck } from "../../decision/check-input.js";
import type { BatchItem } from "../../decision/batch-check.js";
import type { CheckRequest, CheckResponse, TenantContext } from "../../gen/bulkhead/v1/decision.js";

/** Wire -> domain. Validation happens in the domain (validateCheck). */
export function toRawCheck(request: CheckRequest): RawCheck {
  return {
    principal: request.principal,
    action: request.action,
    resource: request.resource && {
      type: request.resource.type,
      id: request.resource.id,
      tenantId: request.resource.tenantId,
      ownerId: request.resource.ownerId,
      attributes: request.resource.attributes,
    },
    minRevision: request.minRevision,
    consume: request.consume,
    idempotencyKey: request.idempotencyKey,
  };
}

export function fromDecision(decision: Decision): CheckResponse {
  return {
    allow: decision.allow,
    reasons: decision.reasons,
    decisionId: decision.decisionId,
    policyRevision: decision.policyRevision,
    storeRevision: decision.storeRevision,
    evaluatedAt: new Date(decision.evaluatedAt),
    requestId: decision.requestId,
    error: undefined,
  };
}

/**
 * One BatchCheck result. An item without a decision answers allow false with
 * no reasons and no decision id, so a client that reads only `allow` denies.
 */
export function fromBatchItem(item: BatchItem): CheckResponse {
  if ("decision" in item) return fromDecision(item.decision);
  const { code, field = "", message } = item.error;
  return {
    allow: false,
    reasons: [],
    decisionId: "",
    policyRevision: "",
    storeRevision: 0,
    evaluatedAt: undefined,
    requestId: item.requestId,
    error: { code, field, message },
  };
}

export function fromResolvedContext({ principal, member, storeRevision }: ResolvedContext): TenantContext {
  return {
    tenantId: member.tenant.id,
    actorId: principal.actorId,
    actorType: principal.actorType,
    membershipRole: member.membership.role,
    source: principal.source,
    requestId: principal.requestId,
    sessionId: principal.sessionId,
    permissions: member.permissions,
    entitlements: member.entitlements,
    billingStatus: member.tenant.billingStatus,
    planCode: member.tenant.planCode,
    region: member.tenant.region,
    isolationTier: member.tenant.isolationTier,
    storeRevision,
    impersonation: member.impersonation && {
      sessionId: member.impersonation.session_id, staffId: member.impersonation.staff_id, staffRole: member.impersonation.staff_role,
      asActorId: member.impersonation.as_actor_id, expiresAt: member.impersonation.expires_at,
    },
  };
}
