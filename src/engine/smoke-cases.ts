import type { PolicyDecision } from "./decision-result.js";
import type { PolicyData } from "./policy-bundle.js";
import type { PolicyInput } from "./policy-input.js";

/**
 * Security invariants every bundle must keep before it may serve. A candidate
 * that allows any of these is rejected and the last good bundle keeps serving.
 */
const member = (tenantId: string): PolicyInput["context"] => ({
  tenant: { id: tenantId, status: "active", plan_code: "smoke", billing_status: "active", tags: [] },
  actor: { id: "smoke_actor", type: "user" },
  membership: { role: "owner", status: "active" },
  permissions: [],
  entitlements: [],
  limits: {},
  usage: {},
  features: {},
  api_key: null,
  impersonation: null,
  source: "workspace_route",
  request_id: "smoke",
  session_id: "",
});

const resource = (tenantId: string): PolicyInput["resource"] => ({
  type: "smoke",
  id: "smoke_1",
  tenant_id: tenantId,
  owner_id: "",
  attributes: {},
});

export interface SmokeCase {
  name: string;
  input: PolicyInput;
  firstReason: string;
}

/** The cases for a bundle: any action of its catalog, so the boundary rules are what decides. */
export function smokeCases(data: PolicyData): SmokeCase[] {
  const anyAction = Object.keys(data.bulkhead.actions)[0];
  if (anyAction === undefined) throw new Error("the action catalog is empty");
  return casesFor(anyAction);
}

/** Why a decision fails its smoke case, or undefined when it passes. */
export function smokeFailure(smoke: SmokeCase, decision: PolicyDecision): string | undefined {
  if (!decision.allow && decision.reasons[0]?.code === smoke.firstReason) return undefined;
  return `smoke case "${smoke.name}" expected deny with ${smoke.firstReason}, got ` +
    JSON.stringify({ allow: decision.allow, reasons: decision.reasons.map((r) => r.code) });
}

const casesFor = (action: string): SmokeCase[] => [
  {
    name: "an action outside the catalog is denied",
    input: { action: "bulkhead.smoke.not_an_action", resource: resource("ten_a"), consume: 0, context: member("ten_a") },
    firstReason: "unknown_action",
  },
  {
    name: "a resource of another tenant is denied",
    input: { action, resource: resource("ten_b"), consume: 0, context: member("ten_a") },
    firstReason: "wrong_tenant",
  },
  {
    name: "a non-member is denied",
    input: { action, resource: resource("ten_a"), consume: 0, context: { ...member("ten_a"), membership: null } },
    firstReason: "not_a_member",
  },
];
