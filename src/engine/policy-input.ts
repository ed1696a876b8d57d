import type { CheckInput } from "../decision/check-input.js";
import type { ImpersonationContext, Resolution } from "../context/tenant-context.js";

/** The document the Rego policy sees as `input` (DESIGN.md section 4). */
export interface PolicyInput {
  action: string;
  resource: {
    type: string;
    id: string;
    tenant_id: string;
    owner_id: string;
    attributes: Record<string, unknown>;
  };
  consume: number;
  context: {
    tenant: Record<string, unknown>;
    actor: { id: string; type: string };
    membership: { role: string; status: string } | null;
    permissions: string[];
    entitlements: string[];
    limits: Record<string, { soft: number | null; hard: number | null }>;
    usage: Record<string, number>;
    features: Record<string, boolean>;
    api_key: { id: string; scopes: string[] } | null;
    impersonation: ImpersonationContext | null;
    source: string;
    request_id: string;
    session_id: string;
  };
}

/**
 * Builds the policy input from a validated request and the store's answer.
 * Nothing the caller says about permissions or entitlements reaches the
 * policy; only who, where, what and on what.
 */
export function buildPolicyInput(check: CheckInput, resolution: Resolution): PolicyInput {
  const { principal, resource } = check;
  const base = {
    actor: { id: principal.actorId, type: principal.actorType },
    api_key: null,
    impersonation: null,
    source: principal.source,
    request_id: principal.requestId,
    session_id: principal.sessionId,
  };
  const context: PolicyInput["context"] =
    resolution.kind === "member"
      ? {
          ...base,
          tenant: {
            id: resolution.context.tenant.id,
            slug: resolution.context.tenant.slug,
            status: resolution.context.tenant.status,
            plan_code: resolution.context.tenant.planCode,
            billing_status: resolution.context.tenant.billingStatus,
            billing_access: resolution.context.billingAccess,
            region: resolution.context.tenant.region,
            isolation_tier: resolution.context.tenant.isolationTier,
            tags: resolution.context.tenant.tags,
          },
          membership: { role: resolution.context.membership.role, status: resolution.context.membership.status },
          permissions: resolution.context.permissions,
          entitlements: resolution.context.entitlements,
          limits: resolution.context.limits,
          usage: resolution.context.usage,
          features: resolution.context.features,
          api_key: resolution.context.apiKey ?? null,
          impersonation: resolution.context.impersonation ?? null,
        }
      : {
          ...base,
          tenant: { id: resolution.tenantId },
          membership: null,
          permissions: [],
          entitlements: [],
          limits: {},
          usage: {},
          features: {},
        };
  return {
    action: check.action,
    resource: {
      type: resource.type,
      id: resource.id,
      tenant_id: resource.tenantId,
      owner_id: resource.ownerId,
      attributes: resource.attributes,
    },
    consume: check.consume,
    context,
  };
}
