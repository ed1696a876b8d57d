import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICY_DIR, PACKAGE_ROOT } from "../../src/paths.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";

// `bulkhead doctor` (issue 17) as an operator runs it: the built CLI, the
// environment a real sidecar was started with, and that sidecar answering.
// Every secret it is given must come out masked.
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "bulkhead-doctor-"));
const SECRETS = { BULKHEAD_CALLER_TOKENS: "caller-secret-1,caller-secret-2", BULKHEAD_STRIPE_WEBHOOK_SECRETS: "whsec_doctor_secret", BULKHEAD_ADMIN_TOKEN: "admin-doctor-secret" };

/** Asynchronous: the sidecar under test runs in this process and must answer doctor's /healthz meanwhile. */
function doctor(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ status: number | null; out: string; stdout: string }> {
  // Only what the test names: the runner's own BULKHEAD_* variables must not leak in.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BULKHEAD_")));
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, "doctor", ...args], { encoding: "utf8", timeout: 60_000, env: { ...clean, ...env } }, (error, stdout, stderr) =>
      resolve({ status: error ? ((error as { code?: number }).code ?? null) : 0, out: `${stdout}${stderr}`, stdout }),
    ),
  );
}

describe("bulkhead doctor", () => {
  let sidecar: TestSidecar;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    sidecar = await startSidecar();
    await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"));
    sidecar.bulkhead.decisionLog.flush();
    env = { BULKHEAD_DB: sidecar.bulkhead.config.dbPath, BULKHEAD_HTTP_ADDR: `127.0.0.1:${sidecar.httpPort}`, BULKHEAD_POLICY_DIR: DEFAULT_POLICY_DIR, ...SECRETS };
  });
  afterAll(() => sidecar.close());

  it("reports a healthy sidecar, its store and its policy, and masks every secret", async () => {
    const r = await doctor(env);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/ok {4}store {3}.*bulkhead\.db: revision \d+, 1 decisions kept, 0 journal\(s\) of stopped processes waiting for import; schema \d+, quick_check ok/);
    expect(r.out).toMatch(new RegExp(`ok {4}policy {2}.*revision ${sidecar.bulkhead.policies.revision}, loads and passes its smoke cases`));
    expect(r.out).toMatch(/ok {4}sidecar {2}http:\/\/127\.0\.0\.1:\d+\/healthz: ok; policy ready \w+; store writable; audit ok/);
    expect(r.out).toMatch(/BULKHEAD_CALLER_TOKENS +\(set: 2 values, masked\) +\(env\)/);
    expect(r.out).toMatch(/BULKHEAD_DB +\S+bulkhead\.db +\(env\)/);
    for (const secret of ["caller-secret-1", "caller-secret-2", "whsec_doctor_secret", "admin-doctor-secret"]) expect(r.out).not.toContain(secret);
  });

  it("prints the same as JSON, and a flag wins over the environment", async () => {
    const r = await doctor(env, "--json", "--http-addr", "127.0.0.1:1");
    const report = JSON.parse(r.stdout) as { ok: boolean; config: { variable: string; value: string; source: string }[]; checks: { check: string; outcome: string }[] };
    expect(report.ok).toBe(true);
    expect(report.config.find((s) => s.variable === "BULKHEAD_HTTP_ADDR")).toEqual({ variable: "BULKHEAD_HTTP_ADDR", value: "127.0.0.1:1", source: "flag" });
    expect(report.checks.find((c) => c.check === "sidecar")?.outcome, "nothing on port 1").toBe("warn");
    for (const secret of Object.values(SECRETS)) expect(r.stdout).not.toContain(secret.split(",")[0]);
  });

  it("fails on a mistyped variable, naming it and the one meant", async () => {
    const r = await doctor({ ...env, BULKHEAD_CALLER_TOKEN: "x" });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/fail +config +.*BULKHEAD_CALLER_TOKEN.*did you mean BULKHEAD_CALLER_TOKENS/);
  });

  it("fails on a policy directory with no bundle, and on a file that is not a database", async () => {
    const empty = join(work, "no-bundle");
    mkdirSync(empty, { recursive: true });
    const garbage = join(work, "garbage.db");
    writeFileSync(garbage, "this is not SQLite ".repeat(400));
    const r = await doctor({ ...env, BULKHEAD_POLICY_DIR: empty, BULKHEAD_DB: garbage });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/fail +policy +.*no-bundle/);
    expect(r.out).toMatch(/fail +store +.*garbage\.db/);
    expect(r.out).not.toMatch(/\n\s+at /);
  });

  it("never creates the store it checks", async () => {
    const absent = join(work, "absent", "bulkhead.db");
    const r = await doctor({ ...env, BULKHEAD_DB: absent });
    expect(r.out).toMatch(/warn +store +.*does not exist yet/);
    expect(spawnSync("test", ["-e", absent]).status).not.toBe(0);
  });

  describe("in replicated mode", () => {
    let listening: Server;
    let port: number;
    beforeAll(async () => {
      listening = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => listening.listen(0, "127.0.0.1", resolve));
      port = (listening.address() as { port: number }).port;
    });
    afterAll(() => listening.close());

    it("names each NATS server it cannot reach", async () => {
      const r = await doctor({ ...env, BULKHEAD_NATS_URL: `nats://127.0.0.1:${port},nats://bulkhead:nats-pass-9f2@127.0.0.1:1` });
      expect(r.status).toBe(1);
      expect(r.out, "a URL's password is a secret").not.toContain("nats-pass-9f2");
      expect(r.out).toMatch(new RegExp(`ok {4}nats {5}nats://127\\.0\\.0\\.1:${port}: accepts connections`));
      expect(r.out).toMatch(/fail +nats +nats:\/\/\[Redacted\]@127\.0\.0\.1:1: no connection/);
    });
  });
});
