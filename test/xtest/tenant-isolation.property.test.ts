import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createDecisionCore } from "../../src/compose.js";
import { validateCheck, type RawCheck } from "../../src/decision/check-input.js";
import { DEMO_DATASET } from "../../src/demo/demo-dataset.js";
import { applySeed, type StoreSeed } from "../../src/demo/store-seed.js";
import { readPolicyBundle } from "../../src/engine/policy-bundle.js";
import { fixedPolicy } from "../../src/engine/policy-source.js";
import { PolicySet } from "../../src/engine/policy-set.js";
import { ulidGenerator } from "../../src/ids.js";
import { DEFAULT_POLICY_DIR } from "../../src/paths.js";
import { openDatabase } from "../../src/store/database.js";
import { testClock } from "../support/test-time.js";

// Property: over generated stores and requests, no Check allows when the
// resource's tenant differs from the principal's tenant, on the cache-miss
// and the cache-hit path. The host-side boundary guard is off, so this
// pins the policy and the resolver, not the guard.
const STORES = 1000;
const REQUESTS_PER_STORE = 100; // 100,000 requests, each checked twice

const TENANTS = ["ten_a", "ten_b", "ten_c", "ten_d"];
const ACTORS = ["usr_1", "usr_2", "usr_3", "svc_1"];
const ROLES = ["owner", "admin", "member", "viewer", "billing_admin", "custom_x"];
const clock = testClock();

const storeArb = fc.record({
  tenants: fc.uniqueArray(
    fc.record({
      id: fc.constantFrom(...TENANTS),
      planCode: fc.constantFrom("free", "pro", "enterprise"),
      status: fc.constantFrom("active", "active", "suspended"),
      billingStatus: fc.constantFrom("active", "trialing", "past_due", "unpaid", "canceled", "paused"),
    }),
    { minLength: 1, maxLength: 4, selector: (t) => t.id },
  ),
  memberships: fc.array(
    fc.record({
      tenantIndex: fc.nat(3),
      actorId: fc.constantFrom(...ACTORS),
      role: fc.constantFrom(...ROLES),
      status: fc.constantFrom("active", "active", "active", "suspended", "invited"),
    }),
    { maxLength: 10 },
  ),
  customPermissions: fc.subarray(["projects.read", "projects.create", "reports.export", "members.invite", "billing.update"]),
});

const requestArb = fc.record({
  byTenantIndex: fc.nat(4), // 4 = a tenant that does not exist
  bySlug: fc.boolean(),
  actorId: fc.constantFrom(...ACTORS, "usr_stranger"),
  actorType: fc.constantFrom("user", "service_account"),
  action: fc.constantFrom("projects.read", "projects.create", "projects.delete", "members.invite", "reports.export", "billing.update", "analytics.view"),
  // Half the requests stay in the principal's tenant, so the generator also reaches allows.
  sameTenant: fc.boolean(),
  resourceTenant: fc.oneof(fc.constantFrom(...TENANTS, "a", "b", "ten_zz"), fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/)),
  consume: fc.constantFrom(0, 0, 0, 1),
  source: fc.constantFrom("workspace_route", "job", "custom_domain"),
});

type StoreSpec = typeof storeArb extends fc.Arbitrary<infer T> ? T : never;
type RequestSpec = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function seedOf(spec: StoreSpec): StoreSeed {
  const ids = spec.tenants.map((t) => t.id);
  return {
    meters: DEMO_DATASET.meters,
    plans: DEMO_DATASET.plans,
    flags: DEMO_DATASET.flags,
    tenants: spec.tenants.map((t) => ({ ...t, slug: t.id.slice(4), status: t.status as "active" })),
    memberships: spec.memberships
      .filter((m) => m.tenantIndex < ids.length)
      .map((m) => ({
        tenantId: ids[m.tenantIndex]!,
        actorId: m.actorId,
        actorType: m.actorId.startsWith("svc_") ? ("service_account" as const) : ("user" as const),
        role: m.role,
        status: m.status as "active",
      })),
    customRoles: ids.map((tenantId) => ({ tenantId, name: "custom_x", permissions: spec.customPermissions })),
  };
}

function requestOf(spec: RequestSpec, store: StoreSpec, n: number): { raw: RawCheck; principalTenant: string } {
  const tenantId = TENANTS[spec.byTenantIndex] ?? "ten_nowhere";
  const exists = store.tenants.some((t) => t.id === tenantId);
  const principal = spec.bySlug && exists ? { tenantSlug: tenantId.slice(4) } : { tenantId };
  return {
    principalTenant: tenantId,
    raw: {
      principal: { ...principal, actorId: spec.actorId, actorType: spec.actorType, source: spec.source },
      action: spec.action,
      resource: { type: "thing", id: "res_1", tenantId: spec.sameTenant ? tenantId : spec.resourceTenant },
      consume: spec.consume,
      idempotencyKey: `k${n}`,
    },
  };
}

describe("tenant isolation property", () => {
  it(`never allows across tenants over ${STORES * REQUESTS_PER_STORE} generated requests`, async () => {
    const policy = fixedPolicy(await PolicySet.load(await readPolicyBundle(DEFAULT_POLICY_DIR)));
    let checked = 0;
    let allowedSameTenant = 0;
    await fc.assert(
      fc.asyncProperty(storeArb, fc.array(requestArb, { minLength: REQUESTS_PER_STORE, maxLength: REQUESTS_PER_STORE }), async (store, requests) => {
        const db = openDatabase(":memory:");
        try {
          const core = createDecisionCore(db, policy, { clock, ids: ulidGenerator(clock), log: () => {} }, { boundaryGuard: false });
          applySeed(core.writer, core.stores, seedOf(store));
          for (const [i, spec] of requests.entries()) {
            const { raw, principalTenant } = requestOf(spec, store, i);
            const input = validateCheck(raw);
            const miss = await core.decider.check(input);
            const hit = await core.decider.check({ ...input, consume: 0 }); // cached context now
            checked++;
            if (raw.resource!.tenantId !== principalTenant) {
              expect(miss.allow, JSON.stringify(raw)).toBe(false);
              expect(hit.allow, JSON.stringify(raw)).toBe(false);
            } else if (miss.allow) {
              allowedSameTenant++;
            }
          }
        } finally {
          db.close();
        }
      }),
      { numRuns: STORES, seed: 20261126 },
    );
    expect(checked).toBe(STORES * REQUESTS_PER_STORE);
    // The generator must also reach allows, or the property says nothing.
    expect(allowedSameTenant).toBeGreaterThan(100);
  }, 300_000);
});
