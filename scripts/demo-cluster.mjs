// npm run demo:cluster: replicated mode on one machine. Starts a three-node
// NATS JetStream cluster (three nats-server processes with cluster routes,
// JetStream storage in a temp dir) and three `bulkhead serve` sidecars with
// BULKHEAD_NATS_URL, BULKHEAD_NATS_REPLICAS=3 and BULKHEAD_DEMO=1, each with
// its own database file, all on loopback. Prints the addresses and grpcurl
// examples; Ctrl-C stops the sidecars, then NATS, and removes the temp dir.
//
//   --check   free ports instead of the fixed ones; write on sidecar 1, Check
//             with min_revision on all three, stop everything, exit 0
//             (test/replicated/demo-cluster.test.ts). Exit 1 on any failure.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { buildIfStale, root } from "./build-if-stale.mjs";

const args = process.argv.slice(2);
const checkOnly = args.includes("--check");
if (args.some((a) => a !== "--check")) {
  console.error("usage: npm run demo:cluster [-- --check]");
  process.exit(2);
}

const SIZE = 3;
// The README's ports; --check asks the OS for free ones (nats-server -1, serve 0)
// so it can run beside a demo or another engineer's sidecar.
const PORTS = {
  nats: [4222, 4223, 4224], routes: [6222, 6223, 6224], grpc: [50051, 50052, 50053], http: [8081, 8082, 8083],
};
const port = (kind, i) => (checkOnly ? (kind === "nats" || kind === "routes" ? -1 : 0) : PORTS[kind][i]);
const STREAM = "BULKHEAD";
/** One bootstrap admin token for all three, so a write can go to any of them. */
const adminToken = `demo-${randomBytes(12).toString("hex")}`;
// Every sidecar of one stream must hash keys with the same secret (ADR 77): the stream refuses a sidecar with another.
const keySecret = randomBytes(32).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "bulkhead-demo-cluster-"));
const children = [];
let stopping = false;

const say = (line) => console.error(`demo:cluster: ${line}`);

/** Spawns a child in its own process group (Ctrl-C reaches only this script, which stops them in order). */
function launch(label, command, argv, env, ready, logFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const entry = { label, child, output: "" };
    children.push(entry);
    const file = logFile && createWriteStream(logFile);
    let matched = false;
    const onData = (chunk) => {
      const text = chunk.toString();
      entry.output = (entry.output + text).slice(-20_000);
      if (file) file.write(text);
      else if (!checkOnly) for (const line of text.split("\n")) if (line) console.error(`[${label}] ${line}`);
      const match = !matched && entry.output.match(ready);
      if (match) {
        matched = true;
        resolve(match);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code, signal) => {
      file?.end();
      if (!matched) reject(new Error(`${label} exited (${signal ?? code}) before it was ready:\n${entry.output}`));
      else if (!stopping) {
        say(`${label} exited (${signal ?? code}); stopping the rest. Its last output:\n${entry.output.slice(-2_000)}`);
        void stop(1);
      }
    });
    setTimeout(() => !matched && reject(new Error(`${label} not ready after 60 s:\n${entry.output}`)), 60_000).unref();
  });
}

const NATS_READY = /^(?=[\s\S]*Listening for client connections on 127\.0\.0\.1:(\d+))(?=[\s\S]*Listening for route connections on 127\.0\.0\.1:(\d+))[\s\S]*Server is ready/;
/** A node that routes to no peer yet (the free-port seed) is given this port, never listening, until the others dial in. */
const PLACEHOLDER_ROUTE_PORT = 1;

async function startNats(binary) {
  const nodes = [];
  for (let i = 0; i < SIZE; i++) {
    const name = `n${i + 1}`;
    const store = join(dir, "nats", name);
    mkdirSync(store, { recursive: true });
    // Fixed ports: every node routes to the other two. Free ports: the later
    // nodes route to the first, which gossips the full mesh to all.
    const routes = checkOnly
      ? (nodes.length > 0 ? [nodes[0].routePort] : [PLACEHOLDER_ROUTE_PORT])
      : PORTS.routes.filter((_, j) => j !== i);
    const config = join(dir, "nats", `${name}.conf`);
    writeFileSync(config, [
      `server_name: ${name}`,
      `listen: "127.0.0.1:${port("nats", i)}"`,
      `jetstream { store_dir: ${JSON.stringify(store)} }`,
      "cluster {",
      "  name: bulkhead-demo",
      `  listen: "127.0.0.1:${port("routes", i)}"`,
      `  routes: [${routes.map((p) => JSON.stringify(`nats-route://127.0.0.1:${p}`)).join(", ")}]`,
      "}",
    ].join("\n"));
    const match = await launch(`nats ${name}`, binary, ["-c", config], process.env, NATS_READY, join(dir, "nats", `${name}.log`));
    nodes.push({ name, url: `nats://127.0.0.1:${match[1]}`, routePort: Number(match[2]) });
  }
  return nodes;
}

/** The sidecar's environment: the demo's settings only, none of the caller's BULKHEAD_* (a BULKHEAD_DB there would be refused or confusing). */
function sidecarEnv(natsUrls) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("BULKHEAD_")));
  return {
    ...env,
    BULKHEAD_NATS_URL: natsUrls.join(","), BULKHEAD_NATS_STREAM: STREAM, BULKHEAD_NATS_REPLICAS: String(SIZE),
    BULKHEAD_DEMO: "1", BULKHEAD_ADMIN_TOKEN: adminToken, BULKHEAD_KEY_SECRET: keySecret,
  };
}


async function startSidecars(natsUrls) {
  // The sidecar's ready line (src/cli/ready-line.ts), from the build: group 1 its gRPC address, group 2 its HTTP one.
  const { READY_PATTERN: SIDECAR_READY } = await import(pathToFileURL(join(root, "dist", "src", "cli", "ready-line.js")).href);
  const sidecars = [];
  // One at a time: the first seeds the demo dataset into the empty stream, the others join it.
  for (let i = 0; i < SIZE; i++) {
    const db = join(dir, `sidecar${i + 1}`, "bulkhead.db");
    const argv = [join(root, "dist/src/cli/main.js"), "serve", "--db", db,
      "--grpc-addr", `127.0.0.1:${port("grpc", i)}`, "--http-addr", `127.0.0.1:${port("http", i)}`, ...(checkOnly ? ["--no-watch"] : [])];
    const match = await launch(`sidecar ${i + 1}`, process.execPath, argv, sidecarEnv(natsUrls), SIDECAR_READY);
    const sidecar = { n: i + 1, grpc: match[1], http: `http://${match[2]}`, db };
    await untilReady(sidecar);
    sidecars.push(sidecar);
  }
  return sidecars;
}

/** /readyz is 200 once the sidecar has caught up with the stream (ADR 64). */
async function untilReady(sidecar) {
  const giveUp = performance.now() + 60_000;
  for (;;) {
    const status = await fetch(`${sidecar.http}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    if (performance.now() > giveUp) throw new Error(`sidecar ${sidecar.n} not ready on ${sidecar.http}/readyz after 60 s (last status ${status})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The demo's own round trip: a role downgrade on sidecar 1, seen by a Check with min_revision on every sidecar. */
async function checkRoundTrip(sidecars) {
  const { BulkheadClient } = await import(pathToFileURL(join(root, "dist/src/client/index.js")).href);
  const request = (minRevision) => ({
    principal: { tenantId: "ten_globex", actorId: "usr_carol" },
    action: "projects.delete",
    resource: { type: "project", id: "prj_demo", tenantId: "ten_globex" },
    minRevision,
  });
  const clients = sidecars.map((s) => new BulkheadClient({ address: s.grpc, adminToken, operator: "usr_demo", deadlineMs: 10_000, coalesce: false }));
  try {
    const before = await clients[1].check(request(0), { throwOnError: true });
    if (!before.allow) throw new Error(`sidecar 2 denied usr_carol (admin of globex) projects.delete before the write: ${JSON.stringify(before.reasons)}`);
    const write = await clients[0].putMembership({
      tenantId: "ten_globex", membership: { actorId: "usr_carol", role: "viewer" }, reason: "customer_request: demo:cluster --check",
    });
    say(`sidecar 1: usr_carol is now a viewer of ten_globex, at revision ${write.storeRevision}`);
    for (const [i, client] of clients.entries()) {
      const after = await client.check(request(write.storeRevision), { throwOnError: true });
      const codes = after.reasons.map((r) => r.code);
      if (after.allow || !codes.includes("missing_permission") || after.storeRevision < write.storeRevision) {
        throw new Error(`sidecar ${i + 1} answered ${JSON.stringify({ allow: after.allow, codes, storeRevision: after.storeRevision })} after the write at ${write.storeRevision}`);
      }
      say(`sidecar ${i + 1}: Check with min_revision ${write.storeRevision} -> deny (${codes.join(", ")}) at revision ${after.storeRevision}`);
    }
  } finally {
    for (const client of clients) client.close();
  }
}

function printInstructions(nodes, sidecars) {
  const grpcurl = "grpcurl";
  const write = JSON.stringify({ tenant_id: "ten_globex", membership: { actor_id: "usr_carol", role: "viewer" }, reason: "customer_request: demo" });
  const check = (minRevision) => JSON.stringify({
    principal: { tenant_id: "ten_globex", actor_id: "usr_carol" }, action: "projects.delete",
    resource: { type: "project", id: "prj_1", tenant_id: "ten_globex" }, ...(minRevision && { min_revision: minRevision }),
  });
  console.log(`
Three NATS JetStream nodes (stream ${STREAM}, ${SIZE} replicas; data and logs in ${join(dir, "nats")}):
${nodes.map((n) => `  ${n.name}  ${n.url}  (route port ${n.routePort})`).join("\n")}

Three sidecars in replicated mode (BULKHEAD_NATS_URL=${nodes.map((n) => n.url).join(",")}):
${sidecars.map((s) => `  sidecar ${s.n}  gRPC ${s.grpc}  HTTP ${s.http}  db ${s.db}`).join("\n")}

Admin token (all three): ${adminToken}

Try it (scripts/ensure-tool.sh grpcurl installs grpcurl): usr_carol may delete projects of ten_globex,
on any sidecar:
  ${grpcurl} -plaintext -d '${check(0)}' ${sidecars[1].grpc} bulkhead.v1.DecisionService/Check

Downgrade her on sidecar 1; the answer carries the write's store_revision:
  ${grpcurl} -plaintext -H 'authorization: Bearer ${adminToken}' -H 'bulkhead-actor: usr_demo' -d '${write}' ${sidecars[0].grpc} bulkhead.v1.AdminService/PutMembership

Ask sidecar 2 again with min_revision set to that store_revision (2 is the first write's after the seed):
it answers once it has applied it, and now denies with missing_permission:
  ${grpcurl} -plaintext -d '${check("2")}' ${sidecars[1].grpc} bulkhead.v1.DecisionService/Check

Replication on each sidecar: curl -s ${sidecars[2].http}/metrics | grep bulkhead_replication
Ctrl-C stops the sidecars, then NATS, and removes ${dir}.
`);
}

async function stopChild(entry, signal) {
  const { child } = entry;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  // A sidecar drains for up to 5 s; past 15 s something is stuck.
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Sidecars first (they drain and close their NATS connections), then NATS, then the temp dir. */
async function stop(code) {
  if (stopping) return;
  stopping = true;
  const sidecars = children.filter((c) => c.label.startsWith("sidecar"));
  const nats = children.filter((c) => c.label.startsWith("nats"));
  await Promise.all(sidecars.map((c) => stopChild(c, "SIGTERM")));
  await Promise.all(nats.map((c) => stopChild(c, "SIGTERM")));
  rmSync(dir, { recursive: true, force: true });
  if (!checkOnly || code !== 0) say(code === 0 ? "stopped" : "stopped after a failure");
  process.exit(code);
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => void stop(0));
// Whatever ends this script, no nats-server or sidecar outlives it.
process.on("exit", () => {
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

try {
  buildIfStale();
  const natsServer = execFileSync("bash", [join(root, "scripts", "ensure-tool.sh"), "nats-server"], { encoding: "utf8" }).trim();
  say(`starting ${SIZE} nats-server nodes (${natsServer}) in ${dir}`);
  const nodes = await startNats(natsServer);
  say(`starting ${SIZE} sidecars on stream ${STREAM}`);
  const sidecars = await startSidecars(nodes.map((n) => n.url));
  if (checkOnly) {
    await checkRoundTrip(sidecars);
    say(`ok: ${SIZE} NATS nodes and ${SIZE} sidecars started, a write on sidecar 1 was seen by a Check on each`);
    await stop(0);
  } else {
    printInstructions(nodes, sidecars);
  }
} catch (error) {
  say(error instanceof Error ? error.message : String(error));
  if (!checkOnly) say("fixed ports (4222-4224, 6222-6224, 50051-50053, 8081-8083): is another demo or sidecar using them?");
  await stop(1);
}
