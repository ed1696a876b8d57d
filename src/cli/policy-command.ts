import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
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
  bulkhead policy diff --from DIR --to DIR [--replay FILE]
      re-evaluate decisions under both bundles and list every allow <-> deny flip.
      FILE is a suite (.yaml) or a sidecar database whose decision log is replayed
      against its own state (default: ./data/bulkhead.db).
`;

export async function policyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "build") return spawnSync("bash", [join(PACKAGE_ROOT, "scripts", "build-policies.sh"), ...rest], { stdio: "inherit" }).status ?? 1;
  if (sub === "test") return policyTestCommand(rest);
  if (sub === "explain") return policyExplainCommand(rest);
  if (sub === "diff") return diff(rest);
  (sub === "--help" || sub === "-h" ? process.stdout : process.stderr).write(POLICY_USAGE);
  return sub === "--help" || sub === "-h" ? 0 : 2;
}

async function diff(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { from: { type: "string" }, to: { type: "string" }, replay: { type: "string" } } });
  const replay = values.replay ?? resolve("data", "bulkhead.db");
  if (!values.from || !values.to) {
    process.stderr.write(`bulkhead policy diff: --from and --to are required\n\n${POLICY_USAGE}`);
    return 2;
  }
  if (!existsSync(replay)) {
    process.stderr.write(`bulkhead policy diff: nothing to replay at ${replay}; pass --replay <suite.yaml | bulkhead.db>\n`);
    return 2;
  }
  const result = await diffPolicies({ fromDir: values.from, toDir: values.to, replay });
  console.log(describeDiff(result, describeOutcome));
  return 0;
}
