import { describe, expect, it } from "vitest";
import { validateCheck } from "../../src/decision/check-input.js";
import { BulkheadError } from "../../src/errors.js";

const valid = {
  principal: { tenantId: "ten_acme", actorId: "usr_alice" },
  action: "projects.read",
  resource: { type: "project", id: "prj_1", tenantId: "ten_acme" },
};

const fieldOf = (raw: unknown): string | undefined => {
  try {
    validateCheck(raw as never);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(BulkheadError);
    expect((error as BulkheadError).code).toBe("REQUEST_INVALID_ARGUMENT");
    return (error as BulkheadError).field;
  }
};

describe("validateCheck", () => {
  it("accepts a minimal request and fills defaults", () => {
    const input = validateCheck(valid);
    expect(input.principal).toMatchObject({ actorType: "user", source: "workspace_route", tenantSlug: "" });
    expect(input.consume).toBe(0);
    expect(input.resource.attributes).toEqual({});
  });

  it.each([
    ["principal.api_key", { ...valid, principal: { ...valid.principal, apiKey: "bk_live_x" } }],
    ["principal.source", { ...valid, principal: { ...valid.principal, source: "backdoor" } }],
    ["principal.request_id", { ...valid, principal: { ...valid.principal, requestId: "has space" } }],
    ["principal.tenant_slug", { ...valid, principal: { tenantSlug: "Acme!", actorId: "usr_alice" } }],
    ["resource.tenant_id", { ...valid, resource: { type: "project", tenantId: "../ten_b" } }],
    ["resource.owner_id", { ...valid, resource: { ...valid.resource, ownerId: "usr 1" } }],
    ["resource.attributes", { ...valid, resource: { ...valid.resource, attributes: [1, 2] } }],
    ["consume", { ...valid, consume: -1 }],
    ["consume", { ...valid, consume: 1.5 }],
    ["min_revision", { ...valid, minRevision: -3 }],
    ["idempotency_key", { ...valid, idempotencyKey: "key\n" }],
  ])("names %s", (field, raw) => {
    expect(fieldOf(raw)).toBe(field);
  });

  it("prefixes the field for batch items", () => {
    try {
      validateCheck({ ...valid, action: "" }, "checks[7].");
    } catch (error) {
      expect((error as BulkheadError).field).toBe("checks[7].action");
      expect((error as BulkheadError).message).toBe("checks[7].action: is required");
    }
  });
});
