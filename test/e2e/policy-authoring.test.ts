import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { opaPath } from "../support/opa.js";
import { DEFAULT_POLICY_DIR } from "../../src/paths.js";
import { buildVariantBundle, editFile } from "../support/policy-builds.js";

// The policy author's loop as a user runs it: plain OPA on policies/ as it is,
// and the built CLI (`bulkhead policy test`, `bulkhead policy explain`) as a
// child process, judged by its exit code and what it prints.
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const POLICIES = join(PACKAGE_ROOT, "policies");
const FIXTURES = join(PACKAGE_ROOT, "test", "fixtures", "decisions");

function run(command: string, args: string[]): { status: number | null; out: string } {
  const result = spawnSync(command, args, { cwd: PACKAGE_ROOT, encoding: "utf8", timeout: 120_000 });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}
const bulkhead = (...args: string[]) => run(process.execPath, [CLI, ...args]);
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

function copyOf(dir: string): string {
  const copy = mkdtempSync(join(tmpdir(), "bulkhead-authoring-"));
  cpSync(dir, copy, { recursive: true });
  return copy;
}

describe("plain OPA on policies/ as it is", () => {
  it("opa test passes every Rego test, and bulkhead policy test runs the same ones", () => {
    const plain = run(opaPath(), ["test", POLICIES]);
    expect(plain.status, plain.out).toBe(0);
    const passLine = /PASS: (\d+)\/(\d+)/.exec(plain.out);
    expect(passLine?.[1]).toBe(passLine?.[2]);
    expect(Number(passLine?.[1])).toBeGreaterThan(30);

    const ours = bulkhead("policy", "test");
    expect(ours.status, ours.out).toBe(0);
    expect(ours.out).toContain(passLine![0]);
    expect(ours.out).toMatch(/decision fixtures: \d+ passed, 0 failed/);
  });

  it("opa eval and opa check see the data where the policy reads it", () => {
    const viewer = run(opaPath(), ["eval", "--format", "raw", "-d", POLICIES, "data.bulkhead.roles.viewer"]);
    expect(viewer.status, viewer.out).toBe(0);
    expect(JSON.parse(viewer.out)).toContain("projects.read");
    expect(run(opaPath(), ["check", "--strict", POLICIES]).status).toBe(0);
  });
});

describe("bulkhead policy test", () => {
  it("fails on a policy change the fixtures pin (viewers may export), naming the case and both answers", () => {
    const src = copyOf(POLICIES);
    editFile(join(src, "bulkhead", "roles", "data.json"), '"viewer": ["projects.read",', '"viewer": ["projects.read", "reports.export",');
    const result = bulkhead("policy", "test", "--src", src);
    expect(result.status, result.out).toBe(1);
    expect(result.out).toContain("FAIL demo.yaml");
    expect(result.out).toMatch(/FAIL viewer may not export\n\s+expected: deny \[missing_permission\]\n\s+actual:\s+allow \[\]/);
    expect(result.out).not.toMatch(STACK_FRAME);
  });

  it("fails on a broken fixture with a readable diff and exit 1", () => {
    const fixtures = copyOf(FIXTURES);
    const demo = join(fixtures, "demo.yaml");
    writeFileSync(demo, readFileSync(demo, "utf8").replace(
      /(- name: viewer may not export\n.*\n\s+expect: )\{ allow: false, reasons: \[missing_permission\] \}/,
      "$1{ allow: false, reasons: [wrong_tenant] }",
    ));
    const result = bulkhead("policy", "test", "--fixtures", fixtures);
    expect(result.status, result.out).toBe(1);
    expect(result.out).toMatch(/expected: deny \[wrong_tenant\]\n\s+actual:\s+deny \[missing_permission\]/);
    expect(result.out).toMatch(/decision fixtures: \d+ passed, 1 failed/);
  });

  it("rejects a fixture file that breaks the schema, naming the field, with no stack trace", () => {
    const fixtures = copyOf(FIXTURES);
    writeFileSync(join(fixtures, "bad.yaml"), "description: bad\ncases:\n  - name: no expectation\n    request: { principal: { actorId: usr_alice }, action: projects.read, resource: { type: project } }\n");
    const result = bulkhead("policy", "test", "--fixtures", fixtures);
    expect(result.status).toBe(2);
    expect(result.out).toContain("bad.yaml is not a valid decision fixture file");
    expect(result.out).toContain("/cases/0 must have required property 'expect'");
    expect(result.out).not.toMatch(STACK_FRAME);
  });

  it("reports coverage per file and fails under --threshold", () => {
    const result = bulkhead("policy", "test", "--coverage", "--threshold", "100");
    expect(result.out).toMatch(/coverage\s+[\d.]+%\s+policies\/bulkhead\/checks\.rego/);
    expect(result.out).toMatch(/below the threshold 100%/);
    expect(result.status).toBe(1);
    expect(bulkhead("policy", "test", "--threshold", "abc").status).toBe(2);
  });
});

describe("bulkhead policy explain", () => {
  it("shows the input, the rules that fired and the Wasm reasons for a fixture case", () => {
    const result = bulkhead("policy", "explain", "--fixture", join(FIXTURES, "demo.yaml"), "--case", "viewer may not export");
    expect(result.status, result.out).toBe(0);
    expect(result.out).toContain('"role": "viewer"');
    expect(result.out).toMatch(/bulkhead\/checks\.rego:\d+\s+same_tenant/);
    expect(result.out).toMatch(/bulkhead\/checks\.rego:\d+\s+violations contains reason\("missing_permission"/);
    expect(result.out).toMatch(/DENY\n\s+1\. missing_permission: role 'viewer' lacks permission reports\.export/);
    expect(result.out).toContain("opa eval on the sources agrees");
    expect(result.out).toContain("fixture expects: deny [missing_permission] -> pass");
  });

  it("explains a cross-tenant request on the demo store as wrong_tenant, not as the other tenant's answer", () => {
    const request = JSON.stringify({ principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project", id: "prj_9", tenantId: "ten_globex" } });
    const result = bulkhead("policy", "explain", "--demo", "--request", request);
    expect(result.status, result.out).toBe(0);
    expect(result.out).toMatch(/DENY\n\s+1\. wrong_tenant/);
    expect(result.out).not.toMatch(/bulkhead\/checks\.rego:\d+\s+same_tenant/);
  });

  it("answers a user error with one line naming what is wrong", () => {
    const unknownCase = bulkhead("policy", "explain", "--fixture", join(FIXTURES, "demo.yaml"), "--case", "no such case");
    expect(unknownCase.status).toBe(2);
    expect(unknownCase.out).toContain("no case named 'no such case'");
    expect(unknownCase.out).not.toMatch(STACK_FRAME);
    const noStore = bulkhead("policy", "explain", "--request", "{}", "--db", "/nonexistent/bulkhead.db");
    expect(noStore.status).toBe(2);
    expect(noStore.out).toContain("no store at /nonexistent/bulkhead.db");
    expect(bulkhead("policy", "explain", "--help").status).toBe(0);
    expect(bulkhead("policy", "test", "--help").out).toContain("Exit codes");
  });
});

describe("bulkhead policy diff as a CI gate", () => {
  const suite = join(PACKAGE_ROOT, "test", "xtest", "demo.yaml");

  it("--fail-on-flip exits 1 on the viewers-may-export change, 0 when nothing flips; --json is machine-readable", () => {
    const viewersExport = buildVariantBundle((src) =>
      editFile(join(src, "bulkhead", "roles", "data.json"), '"viewer": ["projects.read",', '"viewer": ["projects.read", "reports.export",'),
    );
    const flipped = bulkhead("policy", "diff", "--from", DEFAULT_POLICY_DIR, "--to", viewersExport, "--replay", suite, "--fail-on-flip", "--json");
    expect(flipped.status, flipped.out).toBe(1);
    const report = JSON.parse(flipped.out.slice(flipped.out.indexOf("{"))) as { flips: { id: string; from: { allow: boolean }; to: { allow: boolean } }[] };
    expect(report.flips.length).toBeGreaterThan(0);
    expect(report.flips.every((f) => f.id.includes("reports.export") && !f.from.allow && f.to.allow)).toBe(true);

    const same = bulkhead("policy", "diff", "--from", DEFAULT_POLICY_DIR, "--to", DEFAULT_POLICY_DIR, "--replay", suite, "--fail-on-flip");
    expect(same.status, same.out).toBe(0);
    expect(same.out).toMatch(/, 0 flips/);
    expect(bulkhead("policy", "diff", "--from", DEFAULT_POLICY_DIR, "--to", viewersExport, "--replay", suite).status).toBe(0);
  });

  it("names a missing candidate bundle in one line, and answers --help", () => {
    const missing = bulkhead("policy", "diff", "--from", DEFAULT_POLICY_DIR, "--to", "/nonexistent/bundle", "--replay", suite);
    expect(missing.status).toBe(2);
    expect(missing.out).toContain("--to /nonexistent/bundle: no compiled bundle there");
    expect(missing.out).not.toMatch(STACK_FRAME);
    for (const sub of ["diff", "build", "test", "explain"]) {
      const help = bulkhead("policy", sub, "--help");
      expect(help.status, `policy ${sub} --help`).toBe(0);
      expect(help.out).toContain(`policy ${sub}`);
    }
  });
});

describe("user errors elsewhere in the CLI are one line, never a stack", () => {
  it("billing replay with no token or no sidecar, and serve with an empty policy dir", () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-user-errors-"));
    const noToken = bulkhead("billing", "replay", "evt_unknown", "--reason", "billing_correction: test", "--db", join(dir, "a.db"));
    expect(noToken.status).toBe(2);
    expect(noToken.out).toContain(`no token: pass --token`);
    expect(noToken.out).not.toMatch(STACK_FRAME);
    // Port 1 on loopback: nothing listens there.
    const noSidecar = bulkhead("billing", "replay", "evt_unknown", "--reason", "billing_correction: test", "--token", "t", "--addr", "127.0.0.1:1");
    expect(noSidecar.status).toBe(1);
    expect(noSidecar.out).toContain("bulkhead billing replay: no sidecar answers at 127.0.0.1:1");
    expect(noSidecar.out).not.toMatch(STACK_FRAME);

    const emptyPolicies = mkdtempSync(join(tmpdir(), "bulkhead-empty-policies-"));
    const serve = bulkhead("serve", "--db", join(dir, "s.db"), "--policy-dir", emptyPolicies, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0");
    expect(serve.status).toBe(2);
    expect(serve.out).toContain(`no usable policy bundle in ${emptyPolicies}`);
    expect(serve.out).not.toMatch(STACK_FRAME);
  });
});
