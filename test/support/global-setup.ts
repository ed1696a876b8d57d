import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * Makes sure a compiled bundle and compiled JS (used by the second-process
 * tests) exist before any test runs. `npm test` always rebuilds both; this
 * covers `npx vitest` on a fresh checkout.
 */
export default function setup(): void {
  const root = join(import.meta.dirname, "..", "..");
  if (!existsSync(join(root, "dist", "policies", "bundle.json"))) {
    execFileSync("bash", [join(root, "scripts", "build-policies.sh")], { stdio: "inherit" });
  }
  if (!existsSync(join(root, "dist", "src", "usage", "metering.js"))) {
    execFileSync(join(root, "node_modules", ".bin", "tsc"), ["-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
  }
}
