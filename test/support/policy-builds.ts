import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/paths.js";

/**
 * Compiles a variant of policies/ into a fresh bundle directory: `mutate`
 * edits a copy of the sources first. Used to prove that bad bundles are
 * rejected and that tests notice a weakened policy.
 */
export function buildVariantBundle(mutate: (srcDir: string) => void): string {
  const src = mkdtempSync(join(tmpdir(), "bulkhead-policy-src-"));
  const out = mkdtempSync(join(tmpdir(), "bulkhead-policy-out-"));
  cpSync(join(PACKAGE_ROOT, "policies"), src, { recursive: true });
  mutate(src);
  execFileSync("bash", [join(PACKAGE_ROOT, "scripts", "build-policies.sh"), "--src", src, "--out", out], { stdio: "pipe" });
  return out;
}

/** Replaces text in one file of a policy source copy; fails if the text is absent. */
export function editFile(path: string, from: string | RegExp, to: string): void {
  const before = readFileSync(path, "utf8");
  const after = before.replace(from, to);
  if (after === before) throw new Error(`editFile: ${String(from)} not found in ${path}`);
  writeFileSync(path, after);
}
