import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";

// Fail closed: with the store gone, even a decision that was just allowed
// (and whose context is cached) must become an error, never allow.
let sidecar: TestSidecar;
beforeAll(async () => {
  sidecar = await startSidecar();
});
afterAll(async () => {
  sidecar.client.close();
  await new Promise<void>((resolve) => sidecar.bulkhead.grpc.tryShutdown(() => resolve()));
  await sidecar.bulkhead.http.close();
});

describe("store failure", () => {
  it("turns a lost database into INTERNAL STORE_FAILED, also for cached contexts", async () => {
    const request = checkRequest("ten_acme", "usr_alice", "projects.read");
    expect((await sidecar.check(request)).allow).toBe(true);
    sidecar.bulkhead.db.close();
    const error = await sidecar.check(request).catch((e) => e);
    expect(error.code).toBe(status.INTERNAL);
    expect(error.metadata.get("bulkhead-error-code")).toEqual(["STORE_FAILED"]);
    const batch = await sidecar.batchCheck({ checks: [request] }).catch((e) => e);
    expect(batch.code).toBe(status.INTERNAL);
  });
});
