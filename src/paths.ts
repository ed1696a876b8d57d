import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package root (where package.json, proto/ and policies/ live), found by
 * walking up from this file, so the same code works from src/ under vitest and
 * from dist/src/ when built.
 */
export const PACKAGE_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "proto", "bulkhead"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("bulkhead: cannot find the package root (proto/bulkhead is missing)");
    dir = parent;
  }
  return dir;
})();

export const PROTO_ROOT = join(PACKAGE_ROOT, "proto");
export const DEFAULT_POLICY_DIR = join(PACKAGE_ROOT, "dist", "policies");

/** This build's version, from package.json (the decision-log sinks label events with it). */
export const PACKAGE_VERSION: string = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
