// Builds what is stale before a script runs the compiled sidecar (npm start,
// npm run demo:cluster): TypeScript when src/ or proto/ is newer than
// dist/src/cli/main.js, the Wasm policy bundle when policies/ is newer.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const newest = (dir) => {
  let latest = 0;
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
};
const builtAt = (file) => (existsSync(join(root, file)) ? statSync(join(root, file)).mtimeMs : 0);
const run = (what, command, args) => {
  console.error(`bulkhead: ${what}...`);
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

/** Exits the process (with the build's status) when dependencies are missing or a build fails. */
export function buildIfStale() {
  if (!existsSync(join(root, "node_modules"))) {
    console.error("bulkhead: dependencies are missing; run `npm ci` first (or `npm ci && npm start`)");
    process.exit(1);
  }
  if (builtAt("dist/src/cli/main.js") < Math.max(newest("src"), newest("proto"))) {
    run("compiling TypeScript", "node", ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"]);
  }
  if (builtAt("dist/policies/bundle.json") < newest("policies")) {
    run("compiling policies to Wasm", "bash", ["scripts/build-policies.sh"]);
  }
}
