import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";

// Until the replicated change log lands (issue 13), a sidecar told to use NATS
// must not quietly run single-node: two such sidecars would disagree with no
// sign. The real CLI is started, as an operator would.
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "bulkhead-nats-refused-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const serve = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "serve", "--grpc-addr", "127.0.0.1:0",
    "--http-addr", "127.0.0.1:0", "--no-watch", "--demo", ...args], { env: { ...process.env, ...env }, timeout: 15_000, killSignal: "SIGKILL" })
    .then(() => ({ code: 0, stderr: "" }), (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }));

describe("bulkhead serve with BULKHEAD_NATS_URL", () => {
  it.each([
    ["the flag", ["--nats-url", "nats://127.0.0.1:4222"], {}],
    ["the environment", [], { BULKHEAD_NATS_URL: "nats://127.0.0.1:4222" }],
    // The --workers primary prepares (migrates, seeds) the store itself before forking.
    ["the workers primary", ["--workers", "2", "--nats-url", "nats://127.0.0.1:4222"], {}],
  ])("refuses to start from %s and writes no database", async (_how, flags, env) => {
    const db = join(dir, `${_how.replace(/\W/g, "-")}.db`);
    const { code, stderr } = await serve(["--db", db, ...flags], env);
    expect(code).toBe(2);
    expect(stderr).toMatch(/BULKHEAD_NATS_URL \(--nats-url\) is set, but replicated mode is not available/);
    expect(existsSync(db)).toBe(false);
  });

  it("names a malformed URL", async () => {
    const { code, stderr } = await serve(["--db", join(dir, "bad.db"), "--nats-url", "http://127.0.0.1:4222"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/BULKHEAD_NATS_URL: 'http:\/\/127.0.0.1:4222' must use nats:\/\/ or tls:\/\//);
  });
});
