// npm run example: one command for the example host app next to a demo sidecar.
// 1. starts the sidecar through scripts/start.mjs (which first builds the
//    package and the policies if they are stale) on free ports, with the demo
//    dataset and a directory-sync token made up for this run;
// 2. compiles the example against the built package if it is stale;
// 3. starts the app and prints its URLs. Ctrl-C stops both.
// State lives in examples/host-app/data/ (delete it to start over).
//   HOST_APP_PORT=3001 npm run example
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const data = join(here, "data");
const port = process.env.HOST_APP_PORT ?? "3000";
const syncToken = randomBytes(24).toString("hex");
mkdirSync(data, { recursive: true });

const children = [];
const stop = (code) => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  process.exitCode = code;
};
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => stop(0));

// 1. The sidecar; its ready line on stderr tells us the ports it got.
const sidecar = spawn(process.execPath, [join(root, "scripts", "start.mjs"), "--db", join(data, "bulkhead.db"), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--no-watch"], {
  cwd: root,
  env: { ...process.env, BULKHEAD_DEMO: "1", BULKHEAD_SYNC_TOKENS: syncToken },
  stdio: ["ignore", "pipe", "pipe"],
});
children.push(sidecar);
sidecar.on("exit", (code) => (console.error(`example: the sidecar exited (${code})`), stop(code ?? 1)));
// The line's parser is the package's own (dist/src/cli/ready-line.js), which
// scripts/start.mjs may still be compiling: it exists by the time serve, run
// from the same build, prints the line.
const readyLineModule = join(root, "dist", "src", "cli", "ready-line.js");
const ports = await new Promise((resolve) => {
  let stderr = "";
  let ready = false;
  sidecar.stdout.on("data", (chunk) => process.stdout.write(chunk));
  sidecar.stderr.on("data", async (chunk) => {
    process.stderr.write(chunk);
    if (ready) return;
    stderr += chunk;
    if (!existsSync(readyLineModule)) return;
    const { portOf, readyAddresses } = await import(pathToFileURL(readyLineModule).href);
    const [addresses] = readyAddresses(stderr);
    if (addresses && !ready) {
      ready = true;
      resolve({ grpc: String(portOf(addresses.grpcAddress)), http: String(portOf(addresses.httpAddress)) });
    }
  });
});

// 2. The example, compiled against dist/ (its tsconfig resolves bulkhead/* through package.json exports).
const newest = (dir) => Math.max(0, ...readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => statSync(join(e.parentPath, e.name)).mtimeMs));
const builtAt = existsSync(join(here, "build", "main.js")) ? statSync(join(here, "build", "main.js")).mtimeMs : 0;
if (builtAt < Math.max(newest(join(here, "src")), newest(join(root, "dist", "src", "client")))) {
  console.error("example: compiling examples/host-app...");
  const tsc = spawnSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(here, "tsconfig.json")], { stdio: "inherit" });
  if (tsc.status !== 0) stop(tsc.status ?? 1);
}

// 3. The app.
if (process.exitCode === undefined) {
  const app = spawn(process.execPath, [join(here, "build", "main.js")], {
    cwd: data,
    env: { ...process.env, BULKHEAD_ADDR: `127.0.0.1:${ports.grpc}`, BULKHEAD_SYNC_TOKEN: syncToken, HOST_APP_PORT: port, HOST_APP_DB: join(data, "host-app.db"), HOST_APP_FILES: join(data, "files") },
    stdio: "inherit",
  });
  children.push(app);
  app.on("exit", (code) => (console.error(`example: the app exited (${code})`), stop(code ?? 1)));
  const url = `http://127.0.0.1:${port}`;
  console.log(`
example host app   ${url}   (the user is the x-user header; see examples/host-app/README.md)
bulkhead sidecar   gRPC 127.0.0.1:${ports.grpc}, HTTP http://127.0.0.1:${ports.http} (/readyz, /metrics)

  curl -H 'x-user: usr_alice' ${url}/t/ten_acme/projects
  curl -H 'x-user: usr_alice' ${url}/t/ten_acme/projects/prj_globex_1        # another tenant's id: 404
  curl -H 'x-user: usr_alice' ${url}/t/ten_acme/dashboard
  curl -X POST -H 'x-user: usr_alice' ${url}/t/ten_acme/reports/rep_acme_1/export
  curl -H 'x-user: usr_alice' ${url}/t/ten_acme/files                        # after the worker ran (about a second)
`);
}
