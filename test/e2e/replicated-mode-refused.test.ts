import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";

// A sidecar told to use NATS must never quietly run single-node: two such
// sidecars would disagree with no sign. Unreachable NATS fails the start and
// leaves no database behind; `--workers` is refused (one process per
// replicated sidecar, ADR 43). The real CLI is started, as an operator would.
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "bulkhead-nats-refused-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const serve = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "serve", "--grpc-addr", "127.0.0.1:0",
    "--http-addr", "127.0.0.1:0", "--no-watch", "--demo", ...args], { env: { ...process.env, ...env }, timeout: 15_000, killSignal: "SIGKILL" })
    .then(() => ({ code: 0, stderr: "" }), (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }));

describe("bulkhead serve with BULKHEAD_NATS_URL", () => {
  // Port 1 on loopback: nothing listens there, so the connection is refused at once.
  it.each([
    ["the flag", ["--nats-url", "nats://127.0.0.1:1"], {}],
    ["the environment", [], { BULKHEAD_NATS_URL: "nats://127.0.0.1:1" }],
  ])("fails to start from %s when NATS is unreachable, and leaves no database", async (_how, flags, env) => {
    const db = join(dir, `${_how.replace(/\W/g, "-")}.db`);
    const { code, stderr } = await serve(["--db", db, ...flags], env);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/cannot reach NATS at nats:\/\/127.0.0.1:1/);
    expect(existsSync(db)).toBe(false);
  });

  it("refuses --workers, whose primary prepares the store before forking, and writes no database", async () => {
    const db = join(dir, "workers.db");
    const { code, stderr } = await serve(["--db", db, "--workers", "2", "--nats-url", "nats://127.0.0.1:1"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/BULKHEAD_NATS_URL \(--nats-url\) is set with --workers/);
    expect(existsSync(db)).toBe(false);
  });

  it("names a malformed URL", async () => {
    const { code, stderr } = await serve(["--db", join(dir, "bad.db"), "--nats-url", "http://127.0.0.1:4222"]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/BULKHEAD_NATS_URL: 'http:\/\/127.0.0.1:4222' must use nats:\/\/ or tls:\/\//);
  });
});
