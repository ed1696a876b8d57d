import type { RawCheck } from "../decision/check-input.js";
import type { StoreSeed } from "../demo/store-seed.js";
import type { PolicyData } from "../engine/policy-bundle.js";
import { evaluateFlag } from "../flags/flag-evaluator.js";
import type { Suite } from "./suite.js";

/** What a generated case attacks; the summary groups results by it. */
export const ATTACK_CLASSES = [
  "cross_tenant",
  "cross_tenant_by_slug",
  "non_member",
  "unknown_tenant",
  "job_wrong_tenant",
  "api_key_other_tenant",
  "api_key_scope",
  "vertical_role",
  "inactive_membership",
  "suspended_tenant",
  "billing_state",
  "plan_entitlement",
  "rollout",
  "expected_allow",
  "caller_fields",
] as const;
export type AttackClass = (typeof ATTACK_CLASSES)[number];

export interface XCase {
  /** Stable id: class/actor@tenant/action/resource. */
  id: string;
  attack: AttackClass;
  request: RawCheck;
  /** deny unless the suite lists the combination as allowed; `reason` when the suite names one. */
  expect: { allow: boolean; reason?: string };
}

interface Membership {
  actorId: string;
  actorType: "user" | "service_account";
  tenantId: string;
  role: string;
  status: string;
}

/** The suite's whole state (demo dataset merged in) in the shape generation needs. */
function stateOf(seeds: StoreSeed[]) {
  const tenants = new Map<string, { id: string; slug: string; planCode: string; status: string; billingStatus: string }>();
  const plans = new Map<string, string[]>();
  const memberships = new Map<string, Membership>();
  const customRoles = new Map<string, string[]>();
  const flags = new Map<string, NonNullable<StoreSeed["flags"]>[number]>();
  for (const seed of seeds) {
    for (const p of seed.plans ?? []) plans.set(p.code, p.entitlements);
    for (const t of seed.tenants ?? []) {
      tenants.set(t.id, { status: "active", billingStatus: "active", ...t });
    }
    for (const m of seed.memberships ?? []) {
      memberships.set(`${m.tenantId}/${m.actorId}`, { actorType: "user", status: "active", ...m });
    }
    for (const r of seed.customRoles ?? []) customRoles.set(`${r.tenantId}/${r.name}`, r.permissions);
    for (const f of seed.flags ?? []) flags.set(f.key, f);
  }
  return { tenants, plans, memberships: [...memberships.values()], customRoles, flags };
}

/**
 * The attack matrix: every member x every resource of every other tenant x
 * every action; every actor x every tenant it is not in; every member x its
 * own tenant's resources x every action (expected deny unless allowed by the
 * suite, labelled by the dimension that should stop it); API keys out of
 * tenant and out of scope; jobs aimed at other tenants.
 */
export function generateCases(suite: Suite, seeds: StoreSeed[], data: PolicyData): XCase[] {
  const state = stateOf(seeds);
  const actions = Object.keys(data.bulkhead.actions).sort();
  const cases: XCase[] = [];
  const add = (attack: AttackClass, who: string, action: string, resourceId: string, request: RawCheck, expect: XCase["expect"]) =>
    cases.push({ id: `${attack}/${who}/${action}/${resourceId}`, attack, request, expect });
  const resourcesOf = (tenantId: string) => suite.resources.filter((r) => r.tenant === tenantId);
  const others = (tenantId: string) => suite.resources.filter((r) => r.tenant !== tenantId);
  const check = (m: { actorId: string; actorType: string }, principal: RawCheck["principal"], action: string, r: Suite["resources"][number]): RawCheck => ({
    principal: { actorId: m.actorId, actorType: m.actorType, requestId: "xtest", ...principal },
    action,
    resource: { type: r.type, id: r.id, tenantId: r.tenant },
  });

  for (const m of state.memberships) {
    const who = `${m.actorId}@${m.tenantId}`;
    const slug = state.tenants.get(m.tenantId)?.slug;
    for (const r of others(m.tenantId)) {
      for (const action of actions) {
        add("cross_tenant", who, action, r.id, check(m, { tenantId: m.tenantId }, action, r), { allow: false, reason: "wrong_tenant" });
      }
      if (slug) {
        add("cross_tenant_by_slug", who, actions[0]!, r.id, check(m, { tenantSlug: slug }, actions[0]!, r), { allow: false, reason: "wrong_tenant" });
      }
      add("job_wrong_tenant", who, actions[0]!, r.id, check(m, { tenantId: m.tenantId, source: "job" }, actions[0]!, r), {
        allow: false,
        reason: "wrong_tenant",
      });
    }
    for (const r of resourcesOf(m.tenantId)) {
      for (const action of actions) {
        const allowed = isListedAllow(suite, m, action, r.id);
        const listedDeny = suite.expect?.deny?.find(
          (d) => d.actor === m.actorId && d.tenant === m.tenantId && d.action === action && (!d.resource || d.resource === r.id),
        );
        const attack: AttackClass = allowed ? "expected_allow" : labelDenial(state, data, m, action);
        add(attack, who, action, r.id, check(m, { tenantId: m.tenantId }, action, r), {
          allow: allowed,
          ...(listedDeny && { reason: listedDeny.reason }),
        });
      }
    }
  }

  const actors = new Map(state.memberships.map((m) => [m.actorId, m]));
  for (const actor of actors.values()) {
    const memberOf = new Set(state.memberships.filter((m) => m.actorId === actor.actorId).map((m) => m.tenantId));
    for (const tenantId of state.tenants.keys()) {
      if (memberOf.has(tenantId)) continue;
      for (const r of resourcesOf(tenantId)) {
        for (const action of actions) {
          add("non_member", `${actor.actorId}@${tenantId}`, action, r.id, check(actor, { tenantId }, action, r), { allow: false, reason: "not_a_member" });
        }
      }
    }
    const ghost = { type: "xtest", id: "xtest_unknown_1", tenant: "ten_xtest_unknown" };
    add("unknown_tenant", `${actor.actorId}@${ghost.tenant}`, actions[0]!, ghost.id, check(actor, { tenantId: ghost.tenant }, actions[0]!, ghost), {
      allow: false,
      reason: "not_a_member",
    });
  }

  // API-key cases use the suite's real keys, so each expects the specific
  // reason: a deny for api_key_invalid means the key did not verify on the
  // target, and the case proved nothing about the tenant or scope check.
  for (const key of suite.api_keys ?? []) {
    const apiActor = { actorId: key.id, actorType: "api_key" };
    for (const r of others(key.tenant)) {
      const action = key.scopes[0] ?? actions[0]!;
      add("api_key_other_tenant", `${key.id}@${r.tenant}`, action, r.id, check(apiActor, { tenantId: r.tenant, apiKey: key.secret, source: "api_key" }, action, r), { allow: false, reason: "wrong_tenant" });
    }
    for (const r of resourcesOf(key.tenant)) {
      for (const action of actions.filter((a) => !key.scopes.includes(data.bulkhead.actions[a]!.permission))) {
        add("api_key_scope", `${key.id}@${key.tenant}`, action, r.id, check(apiActor, { tenantId: key.tenant, apiKey: key.secret, source: "api_key" }, action, r), { allow: false, reason: "api_key_scope" });
      }
    }
  }
  return [...cases, ...callerFieldVariants(cases)];
}

/**
 * Fields a caller sends that must never turn a deny into an allow: a forged
 * `source`, another `actor_type`, a made-up `session_id`, and resource
 * attributes claiming the actor owns the resource or is its tenant's owner.
 * Each variant of a deny case expects exactly the base case's answer. Only
 * denies are varied: the one field the catalog gives meaning to
 * (`attributes.role` on members.invite, owner_required) can add a denial,
 * never remove one, so a deny stays a deny whatever the caller claims.
 */
const CALLER_FIELD_VARIANTS: { name: string; apply: (r: RawCheck) => RawCheck }[] = [
  { name: "source_admin", apply: (r) => ({ ...r, principal: { ...r.principal, source: "admin" } }) },
  { name: "actor_type", apply: (r) => ({ ...r, principal: { ...r.principal, actorType: r.principal?.actorType === "user" ? "service_account" : "user" } }) },
  { name: "session_id", apply: (r) => ({ ...r, principal: { ...r.principal, sessionId: "ses_xtest_forged" } }) },
  { name: "owner_id", apply: (r) => ({ ...r, resource: { ...r.resource, ownerId: r.principal?.actorId ?? "" } }) },
  {
    name: "attributes",
    apply: (r) => ({
      ...r,
      resource: {
        ...r.resource,
        attributes: { owner_id: r.principal?.actorId ?? "", tenant_id: r.principal?.tenantId ?? "", role: "owner" },
      },
    }),
  },
];

function callerFieldVariants(cases: XCase[]): XCase[] {
  const varied = new Set<AttackClass>(["cross_tenant", "non_member", "vertical_role"]);
  return cases
    .filter((c) => varied.has(c.attack) && !c.expect.allow)
    .flatMap((c) =>
      CALLER_FIELD_VARIANTS.map((v) => ({
        id: `caller_fields/${v.name}/${c.id}`,
        attack: "caller_fields" as const,
        request: v.apply(c.request),
        // Another actor_type is another actor (not a member): still a deny, for its own reason.
        expect: v.name === "actor_type" ? { allow: false } : c.expect,
      })),
    );
}

function isListedAllow(suite: Suite, m: Membership, action: string, resourceId: string): boolean {
  return (suite.expect?.allow ?? []).some(
    (a) => a.actor === m.actorId && a.tenant === m.tenantId && a.actions.includes(action) && (!a.resources || a.resources.includes(resourceId)),
  );
}

/**
 * Names the dimension that should stop an in-tenant request the suite does
 * not allow. Only a label for the report: the expectation is always "deny".
 */
function labelDenial(state: ReturnType<typeof stateOf>, data: PolicyData, m: Membership, action: string): AttackClass {
  const spec = data.bulkhead.actions[action]!;
  const tenant = state.tenants.get(m.tenantId);
  if (m.status !== "active") return "inactive_membership";
  if (tenant && tenant.status !== "active") return "suspended_tenant";
  const access = data.bulkhead.billing_access[tenant?.billingStatus ?? ""] ?? "none";
  if ((access === "none" && spec.access !== "billing") || (access === "read_only" && spec.access === "write")) return "billing_state";
  const permissions = data.bulkhead.roles[m.role] ?? state.customRoles.get(`${m.tenantId}/${m.role}`) ?? [];
  if (!permissions.includes(spec.permission)) return "vertical_role";
  if (spec.entitlement && !(state.plans.get(tenant?.planCode ?? "") ?? []).includes(spec.entitlement)) return "plan_entitlement";
  if (spec.flag) {
    const flag = state.flags.get(spec.flag);
    const subject = {
      tenantId: tenant?.id ?? "", actorId: m.actorId, role: m.role, planCode: tenant?.planCode ?? null,
      entitlements: state.plans.get(tenant?.planCode ?? "") ?? [], tags: [], environment: "production",
    };
    if (!flag || !tenant || !evaluateFlag({ createdAt: 0, fullyOnSince: null, lastEvaluatedAt: null, killed: false, environments: [], variants: null, ...flag }, subject)) return "rollout";
  }
  return "vertical_role";
}
