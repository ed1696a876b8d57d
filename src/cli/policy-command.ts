import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";
import { policyExplainCommand } from "./policy-explain-command.js";
import { policyTestCommand } from "./policy-test-command.js";
import { describeDiff, diffPolicies } from "../xtest/policy-diff.js";
import { describeOutcome } from "../xtest/report.js";

export const POLICY_USAGE = `bulkhead policy - build, test and compare policy bundles

Usage:
  bulkhead policy build [--src DIR] [--out DIR]   compile policies/ to Wasm (dist/policies)
  bulkhead policy test [--src DIR] [--fixtures DIR] [--coverage]
      opa fmt/check --strict, the Rego unit tests (opa test), then the decision
      fixtures through the compiled Wasm (bulkhead policy test --help)
  bulkhead policy explain --request FILE [--db FILE | --fixture FILE] [--bundle DIR]
      why one request is allowed or denied: input, the rules that fired, reasons
  bulkhead policy diff --from DIR --to DIR [--replay FILE] [--fail-on-flip] [--json]
      re-evaluate decisions under both bundles and list every allow <-> deny flip.
      FILE is a suite (.yaml) or a sidecar database whose decision log is replayed
      against its own state (default: ./data/bulkhead.db).
`;

export async function policyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "build" && (rest.includes("--help") || rest.includes("-h"))) {
    process.stdout.write("bulkhead policy build [--src DIR] [--out DIR]\n  compile policy sources (default policies/) to a Wasm bundle (default dist/policies)\n");
    return 0;
  }
  if (sub === "build") return spawnSync("bash", [join(PACKAGE_ROOT, "scripts", "build-policies.sh"), ...rest], { stdio: "inherit" }).status ?? 1;
  if (sub === "test") return policyTestCommand(rest);
  if (sub === "explain") return policyExplainCommand(rest);
  if (sub === "diff") return diff(rest);
  (sub === "--help" || sub === "-h" ? process.stdout : process.stderr).write(POLICY_USAGE);
  return sub === "--help" || sub === "-h" ? 0 : 2;
}

export const POLICY_DIFF_USAGE = `bulkhead policy diff - every allow <-> deny flip between two compiled bundles

Usage:
  bulkhead policy diff --from DIR --to DIR [--replay FILE] [--fail-on-flip] [--json]

  --from DIR, --to DIR  compiled bundles (bulkhead policy build --out DIR)
  --replay FILE         a cross-tenant suite (.yaml: its generated cases) or a sidecar
                        database (its decision log, against its own state); default ./data/bulkhead.db
  --fail-on-flip        exit 1 when there is at least one flip (a CI gate on policy changes)
  --json                print {from_revision, to_revision, replayed, flips: [...]} instead of text

Exit codes: 0 done (no flips, or flips without --fail-on-flip), 1 flips with --fail-on-flip, 2 usage error.
`;

async function diff(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      from: { type: "string" }, to: { type: "string" }, replay: { type: "string" },
      "fail-on-flip": { type: "boolean" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(POLICY_DIFF_USAGE);
    return 0;
  }
  const replay = values.replay ?? resolve("data", "bulkhead.db");
  if (!values.from || !values.to) {
    process.stderr.write(`bulkhead policy diff: --from and --to are required\n\n${POLICY_DIFF_USAGE}`);
    return 2;
  }
  if (!existsSync(replay)) {
    process.stderr.write(`bulkhead policy diff: nothing to replay at ${replay}; pass --replay <suite.yaml | bulkhead.db>\n`);
    return 2;
  }
  for (const [flag, dir] of [["--from", values.from], ["--to", values.to]] as const) {
    if (!existsSync(join(dir, "bundle.json"))) throw new UsageError(`${flag} ${dir}: no compiled bundle there (bundle.json); build one with: bulkhead policy build --out ${dir}`);
  }
  const result = await diffPolicies({ fromDir: values.from, toDir: values.to, replay });
  if (values.json) {
    const flips = result.flips.map((f) => ({ id: f.id, request: f.request, from: f.from, to: f.to }));
    console.log(JSON.stringify({ from_revision: result.fromRevision, to_revision: result.toRevision, replayed: result.replayed, flips }, null, 2));
  } else {
    console.log(describeDiff(result, describeOutcome));
  }
  return values["fail-on-flip"] && result.flips.length > 0 ? 1 : 0;
}
