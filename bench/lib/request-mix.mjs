// The benchmark's store and request mix, as pure functions of a seed: the same
// seed gives byte-identical tenants, memberships and requests on every machine,
// so two runs (or Bulkhead and OPA in one run) answer the very same questions.
//
// Store: 10,000 tenants x 20 members = 200,000 memberships, 5 plans, flags.
// Mixes (CheckRequest objects in the proto's JSON shape, as ghz sends them):
//   warm: a hot set of 2,000 principals, so after one pass every context is cached;
//   cold: 60,000 distinct members visited once per cycle, more than the context
//         cache holds (50,000), so every request is a cache miss and a store read.
// Both carry denies: wrong tenant, non-members, roles without the permission,
// plans without the entitlement, billing states that block writes.

/** mulberry32: a tiny, fast, well-mixed 32-bit PRNG; enough for a benchmark mix. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SHAPE = { tenants: 10_000, membersPerTenant: 20, hotPrincipals: 2_000, coldPrincipals: 60_000 };

const PLANS = ["free", "starter", "pro", "business", "enterprise"];
// 1 owner, 2 admins, 2 billing admins, 10 members, 5 viewers per tenant.
const ROLES = ["owner", "admin", "admin", "billing_admin", "billing_admin", ...Array(10).fill("member"), ...Array(5).fill("viewer")];
const BILLING = [...Array(90).fill("active"), ...Array(4).fill("past_due"), ...Array(3).fill("unpaid"), "trialing", "trialing", "canceled"];
const RESOURCE_TYPES = { projects: "project", members: "member", reports: "report", billing: "billing_account", analytics: "dashboard" };

const pad = (n, width) => String(n).padStart(width, "0");
export const tenantId = (i) => `ten_${pad(i, 5)}`;
export const actorId = (t, k) => `usr_${pad(t, 5)}_${pad(k, 2)}`;

/** The store as a StoreSeed (src/demo/store-seed.ts); plans and meters extend the demo ones. */
export function storeSeed(seed = 7, shape = SHAPE) {
  const rand = prng(seed);
  const pro = ["projects", "exports.csv", "team_members", "analytics.pro"];
  const limits = (projects, seats, exports) => [
    { meter: "projects", soft: null, hard: projects },
    { meter: "seats", soft: null, hard: seats },
    ...(exports ? [{ meter: "exports.csv.monthly", soft: Math.floor(exports * 0.8), hard: exports }] : []),
  ];
  const plans = [
    { code: "free", name: "Free", entitlements: ["projects"], limits: limits(3, 3) },
    { code: "starter", name: "Starter", entitlements: ["projects", "team_members"], limits: limits(10, 5) },
    { code: "pro", name: "Pro", entitlements: pro, limits: limits(100, 25, 100) },
    { code: "business", name: "Business", entitlements: [...pro, "sso"], limits: limits(1000, 100, 1000) },
    { code: "enterprise", name: "Enterprise", entitlements: [...pro, "sso", "audit.export"], limits: limits(10_000, 1000, 10_000) },
  ];
  const tenants = [];
  const memberships = [];
  const usage = [];
  for (let t = 0; t < shape.tenants; t++) {
    const id = tenantId(t);
    const planCode = PLANS[Math.floor(rand() * PLANS.length)];
    tenants.push({
      id, slug: `t${pad(t, 5)}`, name: `Tenant ${t}`, planCode,
      billingStatus: BILLING[Math.floor(rand() * BILLING.length)],
      region: rand() < 0.7 ? "us" : "eu",
      tags: rand() < 0.1 ? ["beta"] : [],
    });
    for (let k = 0; k < shape.membersPerTenant; k++) {
      const role = ROLES[k % ROLES.length];
      memberships.push({ tenantId: id, actorId: actorId(t, k), role, status: rand() < 0.97 ? "active" : "suspended" });
    }
    usage.push({ tenantId: id, meter: "projects", used: Math.floor(rand() * 12) });
    if (planCode !== "free" && planCode !== "starter") usage.push({ tenantId: id, meter: "exports.csv.monthly", used: Math.floor(rand() * 120) });
  }
  const meters = [
    { name: "projects", kind: "count", reset: "none", description: "projects the tenant has" },
    { name: "seats", kind: "seats", reset: "none", description: "active members plus pending invites" },
    { name: "exports.csv.monthly", kind: "consumable", reset: "calendar_month", description: "CSV exports per month" },
  ];
  return { meters, plans, tenants, memberships, usage, flags: flags() };
}

function flags() {
  const base = { owner: "team-bench", risk: "low", enabled: true, cleanupAt: Date.UTC(2027, 0, 1) };
  return [
    {
      ...base, key: "new_export_pipeline", kind: "release", description: "required by reports.export",
      rules: [{ rule: "plans", params: { plans: ["pro", "business", "enterprise"] } }, { rule: "percentage", params: { percentage: 100 } }],
    },
    { ...base, key: "ai_assistant", kind: "experiment", description: "half the tenants", rules: [{ rule: "percentage", params: { percentage: 50 } }] },
    { ...base, key: "legacy_reports_off", kind: "kill_switch", description: "a kill switch, off", enabled: false, rules: [] },
  ];
}

/**
 * `count` CheckRequests (proto JSON, camelCase as ghz and grpc-js accept).
 * `principals` is the pool size: requests draw members from the first
 * `principals` of a fixed permutation, so the pool is the cache footprint.
 */
export function requestMix({ seed = 11, count, principals, actions, shape = SHAPE, sequential = false }) {
  const rand = prng(seed);
  const total = shape.tenants * shape.membersPerTenant;
  // A fixed permutation of every membership, so pools of different sizes nest.
  const order = permutation(total, prng(seed ^ 0x5eed));
  const requests = [];
  for (let i = 0; i < count; i++) {
    const m = sequential ? order[i % principals] : order[Math.floor(rand() * principals)];
    const t = Math.floor(m / shape.membersPerTenant);
    const k = m % shape.membersPerTenant;
    const action = actions[Math.floor(rand() * actions.length)];
    const roll = rand();
    let principalTenant = t;
    let resourceTenant = tenantId(t);
    let actor = actorId(t, k);
    if (roll < 0.05) resourceTenant = tenantId((t + 1 + Math.floor(rand() * (shape.tenants - 1))) % shape.tenants); // wrong_tenant
    else if (roll < 0.1) actor = actorId((t + 1) % shape.tenants, k); // not_a_member
    const noun = action.split(".")[0];
    requests.push({
      principal: {
        tenantId: tenantId(principalTenant), actorId: actor, actorType: "user",
        requestId: `req_${seed}_${i}`, source: "workspace_route",
      },
      action,
      resource: { type: RESOURCE_TYPES[noun] ?? noun, id: `res_${pad(i % 100_000, 5)}`, tenantId: resourceTenant },
    });
  }
  return requests;
}

function permutation(n, rand) {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
  }
  return a;
}
