import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";

// `npm run demo:cluster` as a user runs it, in its --check mode: three real
// nats-server processes routed into one JetStream cluster and three compiled
// sidecars on free loopback ports; a role downgrade written on sidecar 1 must
// be seen by a Check with min_revision on every sidecar, and the script must
// stop all of them and exit 0.
const script = join(PACKAGE_ROOT, "scripts", "demo-cluster.mjs");
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [script, ...args], { env: process.env }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

describe("npm run demo:cluster", () => {
  it("--check starts three NATS nodes and three sidecars, sees a write on sidecar 1 from each, stops them and exits 0", async () => {
    const result = await run(["--check"]);
    expect(result.stderr).toContain("ok: 3 NATS nodes and 3 sidecars started");
    for (const n of [1, 2, 3]) expect(result.stderr).toMatch(new RegExp(`sidecar ${n}: Check with min_revision \\d+ -> deny \\(missing_permission\\)`));
    expect(result.code).toBe(0);
  }, 120_000);

  it("refuses an argument it does not know, starting nothing", async () => {
    const result = await run(["--chek"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("usage: npm run demo:cluster");
  });
});
