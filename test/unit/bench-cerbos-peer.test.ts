import { describe, expect, it } from "vitest";
import { cerbosCheck } from "../../bench/lib/cerbos-peer.mjs";

// The Cerbos row compares "the same rules" only if the attributes the harness
// precomputes carry exactly the facts Bulkhead's policy reads, and fail closed
// where they cannot (ADR 86).
const member = {
  action: "projects.create",
  resource: { type: "project", id: "prj_1", tenant_id: "ten_a", owner_id: "", attributes: {} },
  consume: 1,
  context: {
    tenant: { id: "ten_a", status: "active", plan_code: "pro", billing_status: "past_due", billing_access: "full" },
    actor: { id: "usr_1", type: "user" },
    membership: { role: "member", status: "active" },
    permissions: ["projects.read", "projects.create"],
    entitlements: ["projects", "exports.csv"],
    limits: { projects: { soft: null, hard: 100 }, seats: { soft: null, hard: null } },
    usage: { projects: 7 },
    features: { new_export_pipeline: true, ai_assistant: false },
    api_key: null,
    impersonation: null,
    source: "workspace_route",
    request_id: "req_1",
    session_id: "",
  },
};
const copy = (patch: (input: typeof member & Record<string, any>) => void) => {
  const input = structuredClone(member) as typeof member & Record<string, any>;
  patch(input);
  return input;
};

describe("bench Cerbos peer: attribute precompute", () => {
  it("maps a member's resolved context onto principal and resource attributes", () => {
    const request = cerbosCheck(member, "req_1");
    expect(request.requestId).toBe("req_1");
    expect(request.principal).toEqual({
      id: "usr_1",
      roles: ["user"],
      attr: {
        tenant_id: "ten_a", role: "member", membership_status: "active", tenant_status: "active", billing_access: "full",
        entitlements: ["projects", "exports.csv"], features: { new_export_pipeline: true, ai_assistant: false },
        // seats has no hard limit: unlimited, so it is not a limit at all.
        limits: { projects: 100 }, usage: { projects: 7 },
      },
    });
    expect(request.resources).toEqual([{ actions: ["projects.create"], resource: { kind: "projects", id: "prj_1", attr: { tenant_id: "ten_a", consume: 1, role: "" } } }]);
  });

  it("takes the resource kind from the action, not from the caller's resource type", () => {
    const request = cerbosCheck(copy((i) => { i.action = "billing.update"; i.resource.type = "project"; }));
    expect(request.resources[0]!.resource.kind).toBe("billing");
  });

  it("keeps the resource's tenant as given, so the boundary is decided by the policy", () => {
    const request = cerbosCheck(copy((i) => { i.resource.tenant_id = "ten_b"; }));
    expect(request.resources[0]!.resource.attr.tenant_id).toBe("ten_b");
    expect(request.principal.attr.tenant_id).toBe("ten_a");
  });

  it("gives a non-member no role and no membership status", () => {
    const request = cerbosCheck(copy((i) => {
      i.context = { ...i.context, tenant: { id: "ten_a" } as never, membership: null as never, entitlements: [], limits: {} as never, usage: {} as never, features: {} as never };
    }));
    expect(request.principal.attr).toMatchObject({ role: "", membership_status: "", tenant_status: "", billing_access: "none", entitlements: [] });
  });

  it("treats a missing or unknown billing access as none (the strictest level)", () => {
    expect(cerbosCheck(copy((i) => { delete (i.context.tenant as Record<string, unknown>).billing_access; })).principal.attr.billing_access).toBe("none");
    expect(cerbosCheck(copy((i) => { i.context.tenant.billing_access = "everything"; })).principal.attr.billing_access).toBe("none");
    expect(cerbosCheck(copy((i) => { i.context.tenant.billing_access = "read_only"; })).principal.attr.billing_access).toBe("read_only");
  });

  it("passes consume and the invited role, defaulting consume to one unit", () => {
    const invite = cerbosCheck(copy((i) => { i.action = "members.invite"; i.consume = 3; i.resource.attributes = { role: "owner" }; }));
    expect(invite.resources[0]!.resource.attr).toEqual({ tenant_id: "ten_a", consume: 3, role: "owner" });
    expect(cerbosCheck(copy((i) => { i.consume = 0; })).resources[0]!.resource.attr.consume).toBe(1);
  });

  it("drops facts of the wrong type instead of passing them on", () => {
    const request = cerbosCheck(copy((i) => {
      i.context.features = { new_export_pipeline: "yes" } as never;
      i.context.usage = { projects: "7" } as never;
      i.context.entitlements = ["projects", 42] as never;
    }));
    expect(request.principal.attr.features).toEqual({});
    expect(request.principal.attr.usage).toEqual({});
    expect(request.principal.attr.entitlements).toEqual(["projects"]);
  });

  it("refuses API-key principals and impersonation sessions, which the peer's policy does not express", () => {
    expect(() => cerbosCheck(copy((i) => { i.context.api_key = { id: "key_1", scopes: ["projects.read"] } as never; }))).toThrow(/API-key/);
    expect(() => cerbosCheck(copy((i) => { i.context.impersonation = { staff_role: "support_agent", session_id: "s" } as never; }))).toThrow(/impersonation/);
  });
});
