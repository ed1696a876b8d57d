// The one way an AuthZEN fixture folder (examples/authzen-certification/,
// examples/authzen-todo/) is served: `npm run authzen:<name>-server`.
// 1. compiles TypeScript if it is stale, and the folder's policy (the generic
//    boundary checks of policies/bulkhead plus <folder>/policy/bulkhead/*.rego,
//    with its data as policy/bulkhead/<name>/data.json) into dist/examples/<name>/;
// 2. opens BULKHEAD_DB, which must not exist yet (default: a new temporary
//    folder), and seeds <folder>/seed.json into it;
// 3. serves with the fixture's tenant as the default AuthZEN tenant and
//    <folder>/resources.json (if any) as the searchable resources. Ctrl-C stops it.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

/** Serves the fixture in `folder` (an absolute path under examples/) with `defaultTenant` as the AuthZEN default. */
export async function serveFixture(folder, { defaultTenant, describe }) {
  const name = basename(folder);
  const root = join(folder, "..", "..");
  const bundleDir = join(root, "dist", "examples", name, "policies");
  const fail = (message) => {
    console.error(`${name}: ${message}`);
    process.exit(1);
  };
  const run = (what, command, args) => {
    console.error(`${name}: ${what}...`);
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
  if (builtAt(join(bundleDir, "bundle.json")) < Math.max(newest("policies"), newest(join("examples", name, "policy")))) {
    const src = mkdtempSync(join(tmpdir(), `${name}-policy-`));
    try {
      // The generic checks are the project's own, unchanged; the fixture only adds rules.
      mkdirSync(join(src, "bulkhead"));
      for (const file of ["checks.rego", "decision.rego"]) cpSync(join(root, "policies", "bulkhead", file), join(src, "bulkhead", file));
      cpSync(join(folder, "policy", "bulkhead"), join(src, "bulkhead"), { recursive: true });
      run(`compiling the ${name} policy to Wasm`, "bash", [join(root, "scripts", "build-policies.sh"), "--src", src, "--out", bundleDir]);
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  }

  // 2. A fresh database: the fixture is the whole store, nothing left from another run.
  const dbPath = resolve(process.env.BULKHEAD_DB || join(mkdtempSync(join(tmpdir(), `${name}-`)), "bulkhead.db"));
  if (existsSync(dbPath)) fail(`BULKHEAD_DB=${dbPath} exists; name a database that does not exist yet (the fixture is seeded into a fresh one)`);

  const dist = (path) => import(pathToFileURL(join(root, "dist", "src", path)).href);
  const { loadConfig, validateConfig } = await dist("config.js");
  const { createBulkhead } = await dist("compose.js");
  const { applySeed } = await dist("demo/store-seed.js");
  const { readyLine } = await dist("cli/ready-line.js");

  const resources = join(folder, "resources.json");
  const config = loadConfig({
    ...process.env,
    BULKHEAD_DB: dbPath,
    BULKHEAD_POLICY_DIR: bundleDir,
    BULKHEAD_AUTHZEN_DEFAULT_TENANT: process.env.BULKHEAD_AUTHZEN_DEFAULT_TENANT || defaultTenant,
    BULKHEAD_AUTHZEN_RESOURCES: process.env.BULKHEAD_AUTHZEN_RESOURCES || (existsSync(resources) ? resources : ""),
  });
  validateConfig(config);
  const bulkhead = await createBulkhead({ ...config, watchPolicies: false });
  const revision = applySeed(bulkhead.writer, bulkhead.stores, JSON.parse(readFileSync(join(folder, "seed.json"), "utf8")));
  const { grpcPort, httpPort } = await bulkhead.listen();
  const host = (addr) => addr.slice(0, addr.lastIndexOf(":"));
  // The same ready line as `bulkhead serve`, so scripts and tests find the ports the same way.
  console.error(readyLine({ grpcAddress: `${host(config.grpcAddr)}:${grpcPort}`, httpAddress: `${host(config.httpAddr)}:${httpPort}` }));
  console.error(`bulkhead: store ${dbPath} seeded with ${describe} at revision ${revision}; AuthZEN at http://${host(config.httpAddr)}:${httpPort}/`);

  const stop = async (signal) => {
    console.error(`bulkhead: ${signal}, shutting down`);
    await bulkhead.close();
    process.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => void stop(signal));
}
