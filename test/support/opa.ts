import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/paths.js";

/** The pinned OPA CLI (installed on first use by scripts/ensure-tool.sh). */
export function opaPath(): string {
  return execFileSync("bash", [join(PACKAGE_ROOT, "scripts", "ensure-tool.sh"), "opa"], { encoding: "utf8" }).trim();
}

/**
 * Evaluates data.bulkhead.decision for many inputs in one `opa eval` process,
 * on the Rego sources and merged data (not the Wasm), so the two engines can be compared.
 */
export function opaEvalDecisions(inputs: unknown[], policyRoot = join(PACKAGE_ROOT, "policies")): unknown[] {
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-opa-"));
  const dataPath = join(dir, "data.json");
  const inputPath = join(dir, "input.json");
  const data = execFileSync("node", [join(PACKAGE_ROOT, "scripts", "merge-policy-data.mjs"), join(policyRoot, "data")]);
  writeFileSync(dataPath, data);
  writeFileSync(inputPath, JSON.stringify({ cases: inputs }));
  const output = execFileSync(
    opaPath(),
    [
      "eval", "--format", "json",
      "-d", join(policyRoot, "bulkhead"), "-d", dataPath, "-i", inputPath,
      "[r | some c in input.cases; r := data.bulkhead.decision with input as c]",
    ],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  const parsed = JSON.parse(output) as { result: { expressions: { value: unknown[] }[] }[] };
  return parsed.result[0]!.expressions[0]!.value;
}
