// npm start: build what is stale (TypeScript, the Wasm policy bundle), then run
// `bulkhead serve` with the demo dataset seeded into an empty database.
// Extra arguments pass through: npm start -- --grpc-addr 127.0.0.1:50052
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
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

const child = spawn(process.execPath, [join(root, "dist/src/cli/main.js"), "serve", ...process.argv.slice(2)], {
  stdio: "inherit",
  env: { BULKHEAD_DEMO: "1", ...process.env },
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
