import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { requestMix, storeSeed } from "../../bench/lib/request-mix.mjs";

// The benchmark compares runs (and Bulkhead with OPA) on "the same requests";
// that only holds if the mix is a pure function of its seed.
const actions = ["projects.read", "projects.create", "reports.export", "billing.update"];
const small = { tenants: 50, membersPerTenant: 4, hotPrincipals: 20, coldPrincipals: 150 };
const digest = (value: unknown) => createHash("sha256").update(JSON.stringify(value)).digest("hex");

describe("bench request mix", () => {
  it("is identical for the same seed and different for another", () => {
    const a = requestMix({ seed: 3, count: 500, principals: 20, actions, shape: small });
    const b = requestMix({ seed: 3, count: 500, principals: 20, actions, shape: small });
    expect(digest(a)).toBe(digest(b));
    expect(digest(requestMix({ seed: 4, count: 500, principals: 20, actions, shape: small }))).not.toBe(digest(a));
    expect(digest(storeSeed(7, small))).toBe(digest(storeSeed(7, small)));
  });

  it("stays inside the principal pool, and carries wrong-tenant and non-member requests", () => {
    const mix = requestMix({ seed: 3, count: 2000, principals: 20, actions, shape: small });
    const members = new Set(mix.map((r) => `${r.principal.tenantId}/${r.principal.actorId}`));
    // 20 members plus the non-member variant of each at most.
    expect(members.size).toBeLessThanOrEqual(40);
    expect(mix.some((r) => r.resource.tenantId !== r.principal.tenantId)).toBe(true);
    expect(mix.some((r) => !r.principal.actorId.startsWith(`usr_${r.principal.tenantId.slice(4)}_`))).toBe(true);
  });

  it("visits every principal of a sequential (cold) pool once per cycle", () => {
    const mix = requestMix({ seed: 5, count: 150, principals: 150, actions, shape: small, sequential: true });
    // Non-member variants rename the actor, so count the member positions.
    const positions = new Set(mix.map((r) => r.principal.tenantId + r.principal.actorId.slice(-3)));
    expect(positions.size).toBe(150);
  });
});
