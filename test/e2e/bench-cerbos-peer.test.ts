import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cerbosAgreement, cerbosAllows, cerbosCheck, cerbosSchemas, startCerbos, type CerbosSchemas } from "../../bench/lib/cerbos-peer.mjs";
import { readPolicyBundle } from "../../src/engine/policy-bundle.js";
import type { PolicyInput } from "../../src/engine/policy-input.js";
import { PolicySet } from "../../src/engine/policy-set.js";
import { DEFAULT_POLICY_DIR, PACKAGE_ROOT } from "../../src/paths.js";

// The benchmark's Cerbos peer (bench/peers/cerbos/, ADR 86) claims to decide
// as Bulkhead does. Here a real Cerbos 0.55.0 over gRPC and Bulkhead's compiled
// Wasm policy answer the same inputs: every action, every role and a non-member,
// each under the attacks that must deny (another tenant, no tenant, suspended
// membership or tenant, billing, plan, flag, limit, inviting an owner).
const policies = join(PACKAGE_ROOT, "policies", "bulkhead");
const roles = JSON.parse(readFileSync(join(policies, "roles", "data.json"), "utf8")) as Record<string, string[]>;
const actions = [...Object.keys(JSON.parse(readFileSync(join(policies, "actions", "data.json"), "utf8")) as object), "projects.teleport"];
const pro = ["projects", "exports.csv", "team_members", "analytics.pro"];

function input(action: string, role: string | null): PolicyInput {
  return {
    action,
    resource: { type: "thing", id: "res_1", tenant_id: "ten_a", owner_id: "", attributes: {} },
    consume: 1,
    context: {
      tenant: { id: "ten_a", status: "active", plan_code: "pro", billing_status: "active", billing_access: "full" },
      actor: { id: "usr_1", type: "user" },
      membership: role ? { role, status: "active" } : null,
      permissions: role ? roles[role]! : [],
      entitlements: role ? pro : [],
      limits: role ? { projects: { soft: null, hard: 100 }, seats: { soft: null, hard: 25 }, "exports.csv.monthly": { soft: 80, hard: 100 } } : {},
      usage: role ? { projects: 5, "exports.csv.monthly": 99 } : {},
      features: role ? { new_export_pipeline: true } : {},
      api_key: null,
      impersonation: null,
      source: "workspace_route",
      request_id: "req_1",
      session_id: "",
    },
  };
}

type Attack = (i: PolicyInput) => void;
const attacks: Record<string, Attack> = {
  none: () => {},
  other_tenant: (i) => { i.resource.tenant_id = "ten_b"; },
  no_tenant: (i) => { i.resource.tenant_id = ""; },
  membership_suspended: (i) => { if (i.context.membership) i.context.membership.status = "suspended"; },
  tenant_suspended: (i) => { i.context.tenant.status = "suspended"; },
  billing_read_only: (i) => { i.context.tenant.billing_access = "read_only"; },
  billing_none: (i) => { i.context.tenant.billing_access = "none"; },
  free_plan: (i) => { i.context.entitlements = ["projects"]; },
  flag_off: (i) => { i.context.features = { new_export_pipeline: false }; },
  flag_absent: (i) => { i.context.features = {}; },
  at_limit: (i) => { i.context.usage = { projects: 100, seats: 25, "exports.csv.monthly": 100 }; },
  consume_over: (i) => { i.consume = 2; },
  unlimited: (i) => { i.context.limits = { projects: { soft: null, hard: null } }; i.context.usage = { projects: 1e6 }; },
  invite_owner: (i) => { i.resource.attributes = { role: "owner" }; },
};

const cases: { name: string; input: PolicyInput }[] = [];
for (const action of actions) {
  for (const role of [...Object.keys(roles), null]) {
    for (const [attack, apply] of Object.entries(attacks)) {
      const i = input(action, role);
      apply(i);
      cases.push({ name: `${action} ${role ?? "non-member"} ${attack}`, input: i });
    }
  }
}

let cerbos: { address: string; stop: () => Promise<void> };
let schemas: CerbosSchemas;
let policy: PolicySet;

beforeAll(async () => {
  cerbos = await startCerbos({ root: PACKAGE_ROOT });
  schemas = await cerbosSchemas(cerbos.address);
  policy = await PolicySet.load(await readPolicyBundle(DEFAULT_POLICY_DIR));
});
afterAll(async () => {
  await cerbos?.stop();
});

describe("bench Cerbos peer vs Bulkhead's policy", () => {
  it("agrees on allow/deny for every action, role and attack", async () => {
    const expected = cases.map((c) => {
      const decision = policy.evaluate(c.input);
      return { allow: decision.allow, reasons: decision.reasons.map((r) => r.code) };
    });
    const requests = cases.map((c, n) => cerbosCheck(c.input, `case_${n}`));
    const { count, examples } = await cerbosAgreement({ address: cerbos.address, schemas, requests, expected, examples: 10 });
    expect(examples.map((x) => `${cases[x.index]!.name}: Bulkhead ${x.bulkhead}, Cerbos ${x.cerbos}`)).toEqual([]);
    expect(count).toBe(0);
    // Not agreement by denying everything: both answers occur, and the boundary attacks only deny.
    const allowed = expected.filter((e) => e.allow).length;
    expect(allowed).toBeGreaterThan(50);
    expect(cases.length - allowed).toBeGreaterThan(50);
    const boundary = cases.map((c, n) => ({ c, e: expected[n]! })).filter(({ c }) => / (other_tenant|no_tenant|membership_suspended)$|non-member|teleport/.test(c.name));
    expect(boundary.length).toBeGreaterThan(0);
    expect(boundary.filter(({ e }) => e.allow).map(({ c }) => c.name)).toEqual([]);
  }, 60_000); // 672 gRPC calls; on a busy 2-core machine that took 7 s

  it("answers one action of one resource per request, and nothing for an action it was not asked", async () => {
    const request = cerbosCheck(input("projects.read", "viewer"), "one");
    const { count } = await cerbosAgreement({ address: cerbos.address, schemas, requests: [request], expected: [{ allow: true, reasons: [] }] });
    expect(count).toBe(0);
    expect(cerbosAllows(request, { results: [{ actions: { "projects.delete": "EFFECT_ALLOW" } }] })).toBe(false);
    expect(cerbosAllows(request, {})).toBe(false);
  });
});
