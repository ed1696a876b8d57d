import { describe, expect, it } from "vitest";
import { normaliseDecision } from "../../src/engine/decision-result.js";
import type { PolicyData } from "../../src/engine/policy-bundle.js";

const data: PolicyData = {
  bulkhead: { actions: { "projects.read": { permission: "projects.read", access: "read" } }, roles: {}, billing_access: {}, staff_roles: {} },
};
const wrap = (result: unknown) => [{ result }];

describe("normaliseDecision fails closed", () => {
  it.each([
    ["an empty result set", []],
    ["no result", [{}]],
    ["a non-object result", wrap(true)],
    ["allow as a string", wrap({ allow: "true", reasons: [] })],
    ["reasons missing", wrap({ allow: true })],
    ["a reason without code", wrap({ allow: false, reasons: [{ message: "x" }] })],
    ["allow with deny reasons", wrap({ allow: true, reasons: [{ code: "wrong_tenant" }] })],
    ["deny without reasons", wrap({ allow: false, reasons: [] })],
  ])("turns %s into a policy_error deny", (_what, resultSet) => {
    const decision = normaliseDecision(resultSet, "projects.read", data);
    expect(decision.allow).toBe(false);
    expect(decision.reasons.map((r) => r.code)).toEqual(["policy_error"]);
  });

  it("denies an action outside the catalog even if the policy allowed it", () => {
    const decision = normaliseDecision(wrap({ allow: true, reasons: [] }), "projects.teleport", data);
    expect(decision).toMatchObject({ allow: false, reasons: [{ code: "unknown_action" }] });
  });

  it("passes a clean allow and stringifies non-string details", () => {
    expect(normaliseDecision(wrap({ allow: true, reasons: [] }), "projects.read", data)).toEqual({ allow: true, reasons: [] });
    const deny = normaliseDecision(wrap({ allow: false, reasons: [{ code: "limit_reached", details: { used: 3 } }] }), "projects.read", data);
    expect(deny.reasons[0]).toEqual({ code: "limit_reached", message: "", details: { used: "3" } });
  });
});
