import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * Makes sure a compiled bundle exists before any test runs. `npm test`
 * already builds it; this covers `npx vitest` on a fresh checkout.
 */
export default function setup(): void {
  const root = join(import.meta.dirname, "..", "..");
  if (!existsSync(join(root, "dist", "policies", "bundle.json"))) {
    execFileSync("bash", [join(root, "scripts", "build-policies.sh")], { stdio: "inherit" });
  }
}
