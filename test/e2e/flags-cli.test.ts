import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { checkRequest, codes, startSidecar, TEST_ADMIN_TOKEN, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// `bulkhead flags` as its own process (compiled CLI) against a real sidecar.
let sidecar: TestSidecar;
beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock: testClock() } });
});
afterAll(() => sidecar.close());

const cli = (...args: string[]) =>
  promisify(execFile)(process.execPath, [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "flags", ...args, "--addr", sidecar.grpcAddress, "--token", TEST_ADMIN_TOKEN, "--as", "usr_ops"]).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe("bulkhead flags", () => {
  it("puts, lists, shows, kills and reports stale flags", async () => {
    const file = join(sidecar.dir, "flag.json");
    writeFileSync(file, JSON.stringify({ key: "old_banner", kind: "release", owner: "team-web", cleanupAt: "2026-01-31", rules: [] }));
    expect((await cli("put", file, "--reason", "maintenance: banner")).code).toBe(0);
    expect((await cli("list")).stdout).toContain("old_banner\trelease\tteam-web\tlow\tenabled");
    expect(JSON.parse((await cli("show", "new_export_pipeline")).stdout)).toMatchObject({ kind: "release", owner: "team-reports" });
    expect((await cli("stale")).stdout).toBe("old_banner\tpast its cleanup date 2026-01-31\n");
    expect((await cli("kill", "new_export_pipeline", "--reason", "incident: exports down")).code).toBe(0);
    expect(codes(await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export")))).toEqual(["feature_disabled"]);
    expect((await cli("list")).stdout).toContain("new_export_pipeline\trelease\tteam-reports\tmedium\tKILLED");
    await cli("kill", "new_export_pipeline", "--off", "--reason", "incident: fixed");
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"))).allow).toBe(true);
  });

  it("refuses a kill without a reason, naming the field, and kills nothing", async () => {
    const refused = await cli("kill", "new_export_pipeline");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("(field reason)");
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"))).allow).toBe(true);
  });
});
