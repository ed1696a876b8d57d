import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckRequest, DecisionServiceClient, type CheckResponse } from "../../src/gen/bulkhead/v1/decision.js";
import { startSidecarProcess } from "../support/processes.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// reports.export names the flag new_export_pipeline in the catalog (demo:
// pro and enterprise, 100%). A kill switch thrown anywhere - by another
// process writing the same file - must turn the very next Check into a deny,
// in this sidecar and in a second `bulkhead serve` process on the file.
const clock = testClock();
let sidecar: TestSidecar;
beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
});
afterAll(() => sidecar.close());

const worker = join(import.meta.dirname, "..", "support", "flag-kill-worker.mjs");
const kill = async (state: "on" | "off") => {
  const { stdout } = await promisify(execFile)(process.execPath, [worker, sidecar.bulkhead.config.dbPath, "new_export_pipeline", state, String(clock.now())]);
  return JSON.parse(stdout) as { found: boolean; revision: number };
};
const exportCheck = () => sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"));

describe("flags in the decision", () => {
  it("denies an action whose flag is off for the tenant with feature_disabled", async () => {
    // globex is free: new_export_pipeline's plans rule keeps it off there.
    const response = await sidecar.check(checkRequest("ten_globex", "usr_carol", "reports.export"));
    expect(response.allow).toBe(false);
    expect(codes(response)).toContain("feature_disabled");
  });

  it("sees a kill switch thrown by another process on the very next Check, and its release too", async () => {
    expect((await exportCheck()).allow).toBe(true); // warms the context cache
    expect((await kill("on")).found).toBe(true);
    const denied = await exportCheck();
    expect(denied.allow).toBe(false);
    expect(codes(denied)).toEqual(["feature_disabled"]);
    await kill("off");
    expect((await exportCheck()).allow).toBe(true);
  });

  it("a second sidecar process on the same file denies on its very next Check too", async () => {
    const other = await startSidecarProcess(sidecar.bulkhead.config.dbPath);
    const client = new DecisionServiceClient(other.grpcAddress, credentials.createInsecure());
    const check = () =>
      new Promise<CheckResponse>((resolve, reject) =>
        client.check(CheckRequest.fromPartial(checkRequest("ten_acme", "usr_alice", "reports.export")), (e, r) => (e ? reject(e) : resolve(r))),
      );
    try {
      expect((await check()).allow).toBe(true);
      await kill("on");
      expect(codes(await check())).toEqual(["feature_disabled"]);
      expect(codes(await exportCheck())).toEqual(["feature_disabled"]);
    } finally {
      client.close();
      other.child.kill("SIGTERM");
      await kill("off");
    }
  });
});
