// npm run authzen:certification-server: a sidecar loaded with the AuthZEN
// Authorization API 1.0 certification fixture (openid/authzen,
// certification/authorization-api-1_0-scenario.md, section C-1), AuthZEN at
// the root of BULKHEAD_HTTP_ADDR.
// 1. compiles TypeScript if it is stale, and this folder's policy (the
//    generic boundary checks of policies/bulkhead plus policy/bulkhead/
//    records.rego, with its data as policy/bulkhead/<name>/data.json) into dist/examples/authzen-certification/;
// 2. opens BULKHEAD_DB, which must not exist yet (default: a new temporary
//    folder), and seeds seed.json into it;
// 3. serves with the fixture's tenant as the default AuthZEN tenant and
//    resources.json as the searchable resources. Ctrl-C stops it.
//   BULKHEAD_HTTP_ADDR=127.0.0.1:8080 BULKHEAD_GRPC_ADDR=127.0.0.1:50051 npm run authzen:certification-server
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const bundleDir = join(root, "dist", "examples", "authzen-certification", "policies");
const fail = (message) => {
  console.error(`authzen-certification: ${message}`);
  process.exit(1);
};
const run = (what, command, args) => {
  console.error(`authzen-certification: ${what}...`);
  const result = spawnSync(command, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  if (result.status !== 0) process.exit(result.status ?? 1);
};
const newest = (dir) => {
  let latest = 0;
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
};
const builtAt = (file) => (existsSync(file) ? statSync(file).mtimeMs : 0);

// 1. Build what is stale.
if (builtAt(join(root, "dist/src/compose.js")) < Math.max(newest("src"), newest("proto"))) {
  run("compiling TypeScript", "node", ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"]);
}
if (builtAt(join(bundleDir, "bundle.json")) < Math.max(newest("policies"), newest("examples/authzen-certification/policy"))) {
  const src = mkdtempSync(join(tmpdir(), "authzen-certification-policy-"));
  try {
    // The generic checks are the project's own, unchanged; the fixture only adds rules.
    mkdirSync(join(src, "bulkhead"));
    for (const file of ["checks.rego", "decision.rego"]) cpSync(join(root, "policies", "bulkhead", file), join(src, "bulkhead", file));
    cpSync(join(here, "policy", "bulkhead"), join(src, "bulkhead"), { recursive: true });
    run("compiling the certification policy to Wasm", "bash", [join(root, "scripts", "build-policies.sh"), "--src", src, "--out", bundleDir]);
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}

// 2. A fresh database: the fixture is the whole store, nothing left from another run.
const dbPath = resolve(process.env.BULKHEAD_DB || join(mkdtempSync(join(tmpdir(), "authzen-certification-")), "bulkhead.db"));
if (existsSync(dbPath)) fail(`BULKHEAD_DB=${dbPath} exists; name a database that does not exist yet (the fixture is seeded into a fresh one)`);

const dist = (path) => import(pathToFileURL(join(root, "dist", "src", path)).href);
const { loadConfig, validateConfig } = await dist("config.js");
const { createBulkhead } = await dist("compose.js");
const { applySeed } = await dist("demo/store-seed.js");
const { readyLine } = await dist("cli/ready-line.js");

const config = loadConfig({
  ...process.env,
  BULKHEAD_DB: dbPath,
  BULKHEAD_POLICY_DIR: bundleDir,
  BULKHEAD_AUTHZEN_DEFAULT_TENANT: process.env.BULKHEAD_AUTHZEN_DEFAULT_TENANT || "ten_certification",
  BULKHEAD_AUTHZEN_RESOURCES: process.env.BULKHEAD_AUTHZEN_RESOURCES || join(here, "resources.json"),
});
validateConfig(config);
const bulkhead = await createBulkhead({ ...config, watchPolicies: false });
const revision = applySeed(bulkhead.writer, bulkhead.stores, JSON.parse(readFileSync(join(here, "seed.json"), "utf8")));
const { grpcPort, httpPort } = await bulkhead.listen();
const host = (addr) => addr.slice(0, addr.lastIndexOf(":"));
// The same ready line as `bulkhead serve`, so scripts and tests find the ports the same way.
console.error(readyLine({ grpcAddress: `${host(config.grpcAddr)}:${grpcPort}`, httpAddress: `${host(config.httpAddr)}:${httpPort}` }));
console.error(`bulkhead: store ${dbPath} seeded with the certification fixture at revision ${revision}; AuthZEN at http://${host(config.httpAddr)}:${httpPort}/`);

const stop = async (signal) => {
  console.error(`bulkhead: ${signal}, shutting down`);
  await bulkhead.close();
  process.exit(0);
};
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => void stop(signal));
