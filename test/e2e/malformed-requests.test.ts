import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Input a caller controls is answered INVALID_ARGUMENT naming what is wrong,
// never INTERNAL (issue 15, item 10): the caller must be able to tell its own
// mistake from the sidecar failing.
let sidecar: TestSidecar;
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e: ServiceError) => e);

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock: testClock() } });
});
afterAll(() => sidecar.close());

describe("malformed requests", () => {
  it("a uint64 above 2^53 is INVALID_ARGUMENT, not INTERNAL", async () => {
    const error = await failure(sidecar.check({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), minRevision: 2 ** 60 }));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/cannot be decoded/);
  });

  const nestedAttributes = (levels: number) => {
    let nested: Record<string, unknown> = { leaf: true };
    for (let i = 1; i < levels; i++) nested = { n: nested };
    return nested;
  };
  const withAttributes = (attributes: Record<string, unknown>) =>
    sidecar.check({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), resource: { type: "project", id: "p", tenantId: "ten_acme", attributes } });

  it("resource attributes nested 100 levels deep are INVALID_ARGUMENT (the decoder refuses them)", async () => {
    const error = await failure(withAttributes(nestedAttributes(100)));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/cannot be decoded/);
  });

  it("resource attributes deeper than 16 levels are INVALID_ARGUMENT naming the field; 16 are fine", async () => {
    const error = await failure(withAttributes(nestedAttributes(20)));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["resource.attributes"]);
    expect((await withAttributes(nestedAttributes(16))).allow).toBe(true);
  });

  it("a sane request still answers", async () => {
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);
  });
});
