import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";
import { opaPath } from "./opa-cli.js";
import { describeFailure, fixtureFiles, runFixtureFile } from "../xtest/decision-fixtures.js";

export const POLICY_TEST_USAGE = `bulkhead policy test - everything that checks a policy, in one command

Usage:
  bulkhead policy test [--src DIR] [--fixtures DIR] [--coverage] [--threshold PCT]

Steps, in order (the first failing step ends the run):
  1. opa fmt --fail and opa check --strict on DIR
  2. opa test DIR (the Rego unit tests, *_test.rego; plain OPA on the folder as it is)
  3. compile DIR to Wasm in a scratch folder
  4. run every decision fixture (*.yaml, schemas/decision-fixtures.schema.json)
     through that Wasm on a fresh store: allow and the reason codes must match exactly

Options:
  --src DIR        policy sources (default: the package's policies/)
  --fixtures DIR   decision fixtures (default: test/fixtures/decisions, when it exists)
  --coverage       print Rego line coverage per file from opa test, with uncovered lines
  --threshold PCT  with --coverage: fail when total coverage is below PCT

Exit codes: 0 all passed, 1 a step failed, 2 usage error.
`;

interface CoverageReport {
  files: Record<string, { coverage?: number; not_covered?: { start: { row: number }; end: { row: number } }[] }>;
  coverage: number;
}

export async function policyTestCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      src: { type: "string" },
      fixtures: { type: "string" },
      coverage: { type: "boolean" },
      threshold: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(POLICY_TEST_USAGE);
    return 0;
  }
  const threshold = values.threshold === undefined ? undefined : Number(values.threshold);
  if (threshold !== undefined && !(threshold >= 0 && threshold <= 100)) throw new UsageError(`--threshold must be a percentage from 0 to 100, got '${values.threshold}'`);
  const src = resolve(values.src ?? join(PACKAGE_ROOT, "policies"));
  const fixturesDir = values.fixtures === undefined ? join(PACKAGE_ROOT, "test", "fixtures", "decisions") : resolve(values.fixtures);

  step("opa fmt, opa check --strict, opa test");
  if (!runScript("test-policies.sh", ["--src", src])) return 1;
  if (values.coverage && !printCoverage(src, threshold)) return 1;

  step("compile to Wasm");
  const bundleDir = mkdtempSync(join(tmpdir(), "bulkhead-policy-test-"));
  try {
    if (!runScript("build-policies.sh", ["--src", src, "--out", bundleDir])) return 1;
    if (values.fixtures === undefined && !existsSync(fixturesDir)) {
      process.stderr.write(`no decision fixtures at ${fixturesDir}; pass --fixtures DIR to run some\n`);
      return 0;
    }
    step(`decision fixtures (${fixturesDir})`);
    return (await runFixtures(fixturesDir, bundleDir)) ? 0 : 1;
  } finally {
    rmSync(bundleDir, { recursive: true, force: true });
  }
}

async function runFixtures(dir: string, bundleDir: string): Promise<boolean> {
  const files = fixtureFiles(dir);
  if (files.length === 0) throw new UsageError(`no *.yaml decision fixtures in ${dir}`);
  let passed = 0;
  let failed = 0;
  for (const file of files) {
    const results = await runFixtureFile(file, bundleDir);
    const failures = results.filter((r) => !r.pass);
    passed += results.length - failures.length;
    failed += failures.length;
    console.log(`${failures.length === 0 ? "ok  " : "FAIL"} ${basename(file)} (${results.length - failures.length}/${results.length})`);
    for (const failure of failures) console.log(indent(describeFailure(failure)));
  }
  console.log(`decision fixtures: ${passed} passed, ${failed} failed`);
  return failed === 0;
}

function printCoverage(src: string, threshold: number | undefined): boolean {
  const report = JSON.parse(execFileSync(opaPath(), ["test", src, "--coverage", "--format", "json"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })) as CoverageReport;
  for (const [file, entry] of Object.entries(report.files)) {
    const lines = (entry.not_covered ?? []).map((r) => (r.start.row === r.end.row ? `${r.start.row}` : `${r.start.row}-${r.end.row}`));
    console.log(`coverage ${(entry.coverage ?? 0).toFixed(1).padStart(5)}%  ${relative(process.cwd(), file)}${lines.length ? `  not covered: ${lines.join(", ")}` : ""}`);
  }
  console.log(`coverage ${report.coverage.toFixed(1).padStart(5)}%  total`);
  if (threshold !== undefined && report.coverage < threshold) {
    process.stderr.write(`coverage ${report.coverage.toFixed(1)}% is below the threshold ${threshold}%\n`);
    return false;
  }
  return true;
}

function runScript(script: string, args: string[]): boolean {
  return spawnSync("bash", [join(PACKAGE_ROOT, "scripts", script), ...args], { stdio: "inherit" }).status === 0;
}

const step = (what: string) => process.stderr.write(`== ${what}\n`);
const indent = (text: string) => text.replace(/^/gm, "  ");
