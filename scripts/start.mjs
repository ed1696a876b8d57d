// npm start: build what is stale (TypeScript, the Wasm policy bundle), then run
// `bulkhead serve` with the demo dataset seeded into an empty database and
// the operations console on (BULKHEAD_CONSOLE=1).
// Extra arguments pass through: npm start -- --grpc-addr 127.0.0.1:50052
import { spawn } from "node:child_process";
import { join } from "node:path";
import { buildIfStale, root } from "./build-if-stale.mjs";

buildIfStale();

const child = spawn(process.execPath, [join(root, "dist/src/cli/main.js"), "serve", ...process.argv.slice(2)], {
  stdio: "inherit",
  env: { BULKHEAD_DEMO: "1", BULKHEAD_CONSOLE: "1", ...process.env },
});
const httpAddr = process.env.BULKHEAD_HTTP_ADDR ?? "127.0.0.1:8080";
if ((process.env.BULKHEAD_CONSOLE ?? "1") !== "0") {
  // The demo seeds no staff: the operator signs in with the bootstrap token and names themself.
  console.error(`bulkhead demo: console at http://${httpAddr}/console/ ; sign in with the admin token (BULKHEAD_ADMIN_TOKEN, or the admin.token file beside the database) and your name as operator`);
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
