import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../paths.js";

/** The pinned OPA CLI (installed on first use by scripts/ensure-tool.sh, which prints its path). */
export function opaPath(): string {
  return execFileSync("bash", [join(PACKAGE_ROOT, "scripts", "ensure-tool.sh"), "opa"], { encoding: "utf8" }).trim();
}
