import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENV_VARS } from "../../src/config.js";
import { flagOf, resolveSettings, SETTING_NAMES, SETTING_OPTIONS } from "../../src/config-sources.js";
import { CheckRequest, DecisionServiceClient, type CheckResponse } from "../../src/gen/bulkhead/v1/decision.js";
import { CLI, startSidecarProcess } from "../support/processes.js";

// One configuration from three sources (issue 17): flags, the environment and
// a config file, for `serve` and `doctor` alike. Every variable has a flag;
// a flag wins over the environment, which wins over the file; a bad file is
// refused naming the file and the key.
const work = mkdtempSync(join(tmpdir(), "bulkhead-config-sources-"));
const file = (name: string, content: unknown) => {
  const path = join(work, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  chmodSync(path, 0o600);
  return path;
};
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BULKHEAD_")));

describe("resolveSettings", () => {
  it("gives every variable but the cluster's internal ones a flag named after it", () => {
    for (const name of Object.keys(ENV_VARS)) expect(SETTING_OPTIONS[flagOf(name)], name).toBeDefined();
    expect(SETTING_NAMES).toContain("BULKHEAD_WORKERS");
    expect(SETTING_NAMES).not.toContain("BULKHEAD_WORKER_OF");
    expect(flagOf("BULKHEAD_DECISION_LOG_MAX_AGE_DAYS")).toBe("decision-log-max-age-days");
  });

  it("takes a flag over the environment over the file, and says which", () => {
    const config = file("precedence.json", { BULKHEAD_GRPC_ADDR: "127.0.0.1:1", BULKHEAD_HTTP_ADDR: "127.0.0.1:2", BULKHEAD_DB: "/srv/file.db", BULKHEAD_CALLER_TOKENS: ["a", "b"], BULKHEAD_DEMO: true });
    const resolved = resolveSettings({ BULKHEAD_HTTP_ADDR: "127.0.0.1:20", BULKHEAD_DB: "/srv/env.db" }, { config, db: "/srv/flag.db" });
    expect(resolved.env).toMatchObject({ BULKHEAD_GRPC_ADDR: "127.0.0.1:1", BULKHEAD_HTTP_ADDR: "127.0.0.1:20", BULKHEAD_DB: "/srv/flag.db", BULKHEAD_CALLER_TOKENS: "a,b", BULKHEAD_DEMO: "1" });
    expect(resolved.sources).toMatchObject({ BULKHEAD_GRPC_ADDR: "file", BULKHEAD_HTTP_ADDR: "env", BULKHEAD_DB: "flag", BULKHEAD_CALLER_TOKENS: "file" });
  });

  it.each([
    ["absent.json", null, /config file .*absent\.json \(--config \/ BULKHEAD_CONFIG\): no such file/],
    ["not-json.json", '{"BULKHEAD_ADMIN_TOKEN": adminsecretvalue99}', /config file .*not-json\.json .*is not valid JSON/],
    ["array.json", [1, 2], /must be a JSON object of BULKHEAD_\* settings/],
    ["typo.json", { BULKHEAD_CALLER_TOKEN: "x" }, /config file .*typo\.json: unknown setting BULKHEAD_CALLER_TOKEN; did you mean BULKHEAD_CALLER_TOKENS\?/],
    ["lowercase.json", { grpc_addr: "x" }, /'grpc_addr' is not a setting \(keys are the variables' names/],
    ["nested.json", { BULKHEAD_DB: { path: "x" } }, /BULKHEAD_DB must be a string, number, boolean or list/],
    ["self.json", { BULKHEAD_CONFIG: "other.json" }, /BULKHEAD_CONFIG cannot be set in a config file/],
  ])("refuses %s, naming the file and the key", (name, content, message) => {
    const path = content === null ? join(work, name) : file(name, content);
    expect(() => resolveSettings({}, { config: path })).toThrow(message);
    // The parser's own message quotes the text around the fault: it must never reach the error.
    expect(() => resolveSettings({}, { config: path })).not.toThrow(/adminsecre/);
  });
});

describe("bulkhead doctor and serve with a config file", () => {
  const config = file("sidecar.json", { BULKHEAD_CALLER_TOKENS: ["token-from-file-7c1e"], BULKHEAD_DEMO: true, BULKHEAD_DECISION_CACHE_MB: 8, BULKHEAD_LOG_LEVEL: "error" });

  it("doctor shows each setting's source", async () => {
    const out = await new Promise<string>((resolve) =>
      execFile(
        process.execPath, [CLI, "doctor", "--json", "--config", config, "--decision-cache-mb", "4", "--http-addr", "127.0.0.1:1"],
        { env: { ...cleanEnv(), BULKHEAD_LOG_LEVEL: "warn", BULKHEAD_DB: join(work, "doctor.db") } },
        (_error, stdout) => resolve(stdout),
      ),
    );
    const report = JSON.parse(out) as { config: { variable: string; value: string; source: string }[] };
    const setting = (name: string) => report.config.find((s) => s.variable === name);
    expect(setting("BULKHEAD_DECISION_CACHE_MB")).toMatchObject({ value: "4", source: "flag" });
    expect(setting("BULKHEAD_LOG_LEVEL")).toMatchObject({ value: "warn", source: "env" });
    expect(setting("BULKHEAD_CALLER_TOKENS")).toMatchObject({ value: "(set: 1 value, masked)", source: "file" });
    expect(setting("BULKHEAD_GRPC_ADDR")).toMatchObject({ source: "default" });
    expect(out).not.toContain("token-from-file-7c1e");
  });

  describe("serve --config", () => {
    let sidecar: Awaited<ReturnType<typeof startSidecarProcess>>;
    let client: DecisionServiceClient;
    beforeAll(async () => {
      const dir = mkdtempSync(join(work, "serve-"));
      sidecar = await startSidecarProcess(join(dir, "bulkhead.db"), { BULKHEAD_CALLER_TOKENS: "", BULKHEAD_DEMO: "" }, ["--config", config]);
      client = new DecisionServiceClient(sidecar.grpcAddress, credentials.createInsecure());
    });
    afterAll(() => {
      client?.close();
      sidecar?.child.kill("SIGTERM");
    });
    const check = (token: string | null) =>
      new Promise<CheckResponse>((resolve, reject) => {
        const md = new Metadata();
        if (token) md.set("authorization", `Bearer ${token}`);
        const request = CheckRequest.fromPartial({ principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project", id: "prj_1", tenantId: "ten_acme" } });
        client.check(request, md, (error, response) => (error ? reject(error) : resolve(response)));
      });

    it("serves with the file's caller tokens and demo data, an empty variable not overriding the file", async () => {
      expect((await check("token-from-file-7c1e")).allow).toBe(true);
      await expect(check(null)).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
      await expect(check("some-other-token")).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    });
  });
});

afterAll(() => rmSync(work, { recursive: true, force: true }));
