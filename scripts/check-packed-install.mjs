// Ship what you test: packs the project, installs the tarball into a scratch
// folder with production dependencies only (what the Dockerfile's runtime
// stage holds), then from there starts `bulkhead serve` on a fresh database
// with the demo data, waits for /readyz, makes real Checks over gRPC (raw and
// through bulkhead/client), runs a scoped repository through
// bulkhead/client/sqlite, sees bulkhead/client/kysely ask for its optional
// peer, loads bulkhead/embedded and the Express and Fastify adapters
// (without express installed), and
// stops it with SIGTERM. A devDependency imported on the serve path, a file
// missing from package.json `files` or a CLI subcommand that cannot load in
// production fails here, though every test passes.
//
//   node scripts/check-packed-install.mjs [--keep]   (after `npm run build`)
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// Runs inside the scratch folder, so every import resolves from the
// production install, not from this repository.
const CHECK_SCRIPT = `
import { credentials, loadPackageDefinition } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { join } from "node:path";
const pkgRoot = join(process.cwd(), "node_modules", "bulkhead");
const definition = loadSync(join(pkgRoot, "proto", "bulkhead", "v1", "decision.proto"), { keepCase: true, defaults: true, includeDirs: [join(pkgRoot, "proto")] });
const { DecisionService } = loadPackageDefinition(definition).bulkhead.v1;
const client = new DecisionService("127.0.0.1:" + process.argv[1], credentials.createInsecure());
const check = (principal, tenant) => new Promise((resolve, reject) =>
  client.Check({ principal, action: "reports.export", resource: { type: "report", id: "rep_1", tenant_id: tenant } },
    { deadline: Date.now() + 10000 }, (error, r) => error ? reject(error) : resolve({ allow: r.allow, reasons: r.reasons.map((x) => x.code) })));
const alice = await check({ tenant_id: "ten_acme", actor_id: "usr_alice" }, "ten_acme");
const carol = await check({ tenant_slug: "globex", actor_id: "usr_carol" }, "ten_globex");
client.close();
// The host-side client exactly as a user imports it (issue 12: it once pointed at a missing file).
const { BulkheadClient } = await import("bulkhead/client");
const host = new BulkheadClient({ address: "127.0.0.1:" + process.argv[1], deadlineMs: 10000 });
const viaClient = await host.check({ principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "reports.export", resource: { type: "report", id: "rep_1", tenantId: "ten_acme" } });
// A scoped repository on the host's own better-sqlite3 file, from a context the sidecar resolved.
const { createTenantRepo, tenantKey } = await import("bulkhead/client");
const { sqliteDriver } = await import("bulkhead/client/sqlite");
const { default: Database } = await import("better-sqlite3");
const db = new Database(":memory:");
db.exec("CREATE TABLE projects (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL); INSERT INTO projects VALUES ('prj_b', 'ten_globex', 'B')");
const context = await host.resolveContext({ principal: { tenantId: "ten_acme", actorId: "usr_alice" } });
const repo = createTenantRepo(context, { database: sqliteDriver(db), tables: { projects: { tenantColumn: "tenant_id", idColumn: "id", columns: ["id", "tenant_id", "name"] } } }).projects;
repo.insert({ id: "prj_a", name: "A" });
const scoped = { own: repo.findMany().map((r) => r.id), foreign: repo.findById("prj_b") ?? null, key: tenantKey(context, "a:b") };
db.close();
await host.close();
// kysely is an optional peer the scratch project did not install: its adapter must say so, nothing else may need it.
const kysely = await import("bulkhead/client/kysely").then(() => "loaded", (e) => e.code);
const embedded = typeof (await import("bulkhead/embedded")).createEmbeddedTransport;
// The framework adapters load without express installed (a production install has none) and the job runner is exported.
const adapters = [typeof (await import("bulkhead/client/express")).requirePermission, typeof (await import("bulkhead/client/fastify")).requirePermission, typeof (await import("bulkhead/client")).runTenantJob];
console.log(JSON.stringify({ alice, carol, client: { allow: viaClient.allow, reasons: viaClient.reasons.map((x) => x.code) }, scoped, kysely, embedded, adapters }));
`;

const root = fileURLToPath(new URL("..", import.meta.url));
const keep = process.argv.includes("--keep");
const step = (message) => console.error(`\n== packed install: ${message}`);
const fail = (message) => {
  console.error(`packed install: FAILED: ${message}`);
  process.exit(1);
};

for (const built of ["dist/src/cli/main.js", "dist/policies/bundle.json"]) {
  if (!existsSync(join(root, built))) fail(`${built} is missing; run 'npm run build' first`);
}
// The ready line's one parser (the installed package holds the same file).
const { portOf, readyAddresses } = await import(pathToFileURL(join(root, "dist", "src", "cli", "ready-line.js")).href);

const scratch = mkdtempSync(join(tmpdir(), "bulkhead-packed-"));
let server;
try {
  step("npm pack");
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: root, encoding: "utf8" }));
  console.error(`${packed.filename}: ${packed.entryCount} files, ${(packed.size / 1024).toFixed(0)} KiB`);

  step("npm install --omit=dev (better-sqlite3 compiles from source: about two minutes)");
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "bulkhead-packed-check", private: true, type: "module" }));
  execFileSync("npm", ["install", "--omit=dev", "--no-audit", "--no-fund", join(scratch, packed.filename)], { cwd: scratch, stdio: ["ignore", "inherit", "inherit"] });
  for (const devOnly of ["typescript", "vitest", "ts-proto", "fast-check"]) {
    if (existsSync(join(scratch, "node_modules", devOnly))) fail(`devDependency ${devOnly} was installed`);
  }

  const bin = join(scratch, "node_modules", ".bin", "bulkhead");
  const env = { ...process.env, NODE_ENV: "production" };
  step("every subcommand loads: --version and each --help");
  console.error(`version ${execFileSync(bin, ["--version"], { env, encoding: "utf8" }).trim()}`);
  for (const command of [["serve", "--help"], ["policy", "--help"], ["xtest", "--help"], ["billing", "--help"], ["admin", "--help"]]) {
    execFileSync(bin, command, { env, stdio: ["ignore", "ignore", "inherit"] });
    console.error(`bulkhead ${command.join(" ")}: ok`);
  }

  step("bulkhead serve --demo on a fresh database");
  server = spawn(bin, ["serve", "--db", join(scratch, "data", "bulkhead.db"), "--demo", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--no-watch"], {
    cwd: scratch,
    env,
    stdio: ["ignore", "inherit", "pipe"],
  });
  const { grpcPort, httpPort } = await listening(server);
  await ready(httpPort);
  console.error(`ready: gRPC ${grpcPort}, HTTP ${httpPort}`);

  step("Check over gRPC with the installed package's own proto and grpc-js");
  const answers = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", CHECK_SCRIPT, String(grpcPort)], { cwd: scratch, encoding: "utf8" }));
  console.error(JSON.stringify(answers));
  if (answers.alice?.allow !== true) fail("usr_alice's export in acme was not allowed");
  if (answers.carol?.allow !== false || answers.carol.reasons[0] !== "not_in_plan") fail("usr_carol's export in free globex was not denied with not_in_plan");
  if (answers.client?.allow !== true) fail(`bulkhead/client did not answer allow for usr_alice: ${JSON.stringify(answers.client)}`);
  if (JSON.stringify(answers.scoped) !== JSON.stringify({ own: ["prj_a"], foreign: null, key: "tenant:ten_acme:a%3Ab" })) fail(`createTenantRepo/tenantKey from bulkhead/client: ${JSON.stringify(answers.scoped)}`);
  if (answers.kysely !== "ERR_MODULE_NOT_FOUND") fail(`bulkhead/client/kysely without kysely installed: ${answers.kysely}`);
  if (answers.embedded !== "function") fail("bulkhead/embedded does not export createEmbeddedTransport");
  if (answers.adapters?.join() !== "function,function,function") fail(`bulkhead/client/express, bulkhead/client/fastify or runTenantJob did not load: ${JSON.stringify(answers.adapters)}`);
  if (existsSync(join(scratch, "node_modules", "express"))) fail("express was installed by a production install");

  step("SIGTERM");
  const code = await new Promise((resolve) => {
    server.once("exit", (c) => resolve(c));
    server.kill("SIGTERM");
  });
  server = undefined;
  if (code !== 0) fail(`serve exited with ${code} on SIGTERM`);
  console.error("packed install: ok");
} finally {
  server?.kill("SIGKILL");
  if (keep) console.error(`kept ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
}

/** Reads the ports from the ready line `serve` prints on stderr once it serves (it binds port 0). */
function listening(child) {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`serve did not print its ready line within 60 s:\n${output}`)), 60_000);
    child.stderr.on("data", (chunk) => {
      process.stderr.write(chunk);
      output += chunk;
      const [addresses] = readyAddresses(output);
      if (addresses) {
        clearTimeout(timer);
        resolve({ grpcPort: portOf(addresses.grpcAddress), httpPort: portOf(addresses.httpAddress) });
      }
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code} before it was ready:\n${output}`)));
  });
}

async function ready(port) {
  for (let i = 0; i < 100; i++) {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
    if (response?.ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  fail("/readyz never answered 200");
}
