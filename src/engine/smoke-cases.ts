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

/** `action` is any action of the bundle's catalog, so the boundary rules are what decides. */
export const smokeCases = (action: string): { name: string; input: PolicyInput; firstReason: string }[] => [
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
