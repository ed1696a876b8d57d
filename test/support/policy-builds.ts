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

/**
 * A bundle with one injected fault that strikes only when `condition` (a
 * Rego body over `input`) holds, so it can pass the smoke cases and fail on
 * real traffic: `trap` aborts the Wasm (two values for one complete rule),
 * `slow` spins through `spins` x `spins` iterations, `memory` builds an array
 * far beyond the 64 MiB Wasm heap. Decisions are otherwise unchanged.
 */
export function faultyBundle(fault: "trap" | "slow" | "memory", condition: string, spins = 4000): string {
  const rule = {
    trap: `fault := 1 if {\n\t${condition}\n}\n\nfault := 2 if {\n\t${condition}\n}\n`,
    // Compares without computing, so the spin allocates (almost) nothing: opa's
    // Wasm frees nothing during one evaluation, and arithmetic would exhaust the heap first.
    slow: `spin_range := numbers.range(1, ${spins})\n\nfault := count([1 | some i in spin_range; some j in spin_range; i == j]) if {\n\t${condition}\n}\n`,
    memory: `fault := count(numbers.range(1, 100000000)) if {\n\t${condition}\n}\n`,
  }[fault];
  return buildVariantBundle((src) => {
    editFile(join(src, "bulkhead", "checks.rego"), "reason(code, message, details) :=", `${rule}\nreason(code, message, details) :=`);
    // A rule of the entrypoint's package is evaluated on every input, whatever allow decides.
    editFile(join(src, "bulkhead", "decision.rego"), "reasons := checks.reasons", "reasons := checks.reasons\n\nfault := checks.fault");
  });
}

/** A Rego condition true for a tenant with tags (the demo's ten_acme has ["beta"]); the smoke cases have none. */
export const TAGGED_TENANT = "count(input.context.tenant.tags) > 0";
