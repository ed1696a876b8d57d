import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { opaPath } from "../../src/cli/opa-cli.js";
import { PACKAGE_ROOT } from "../../src/paths.js";

export { opaPath } from "../../src/cli/opa-cli.js";

/**
 * Evaluates data.bulkhead.decision for many inputs in one `opa eval` process,
 * on the Rego sources and data as plain OPA loads the folder (not the Wasm), so
 * the two engines can be compared.
 */
export function opaEvalDecisions(inputs: unknown[], policyRoot = join(PACKAGE_ROOT, "policies")): unknown[] {
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-opa-"));
  const inputPath = join(dir, "input.json");
  writeFileSync(inputPath, JSON.stringify({ cases: inputs }));
  const output = execFileSync(
    opaPath(),
    [
      "eval", "--format", "json",
      "-d", policyRoot, "-i", inputPath,
      "[r | some c in input.cases; r := data.bulkhead.decision with input as c]",
    ],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  const parsed = JSON.parse(output) as { result: { expressions: { value: unknown[] }[] }[] };
  return parsed.result[0]!.expressions[0]!.value;
}
