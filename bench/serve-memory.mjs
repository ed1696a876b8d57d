// Peak and settled RSS of a real `bulkhead serve` process after N distinct
// members of one tenant each made a Check (BatchCheck, 1,000 per call): the
// question of issue 15 item 11 ("one sidecar stays under 256 MiB however many
// principals it sees"). Reads VmHWM / VmRSS from /proc, so Linux only; the
// heap and the context cache's bytes come from the sidecar's own /metrics.
// Each member count runs once per heap mode, the modes side by side (ADR 67).
//
//   npm run build && node bench/serve-memory.mjs [--members 60000,200000] [--heap-modes size,speed] [--workers 2]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { credentials, Metadata } from "@grpc/grpc-js";
import { machineDetails, table } from "./machine.mjs";

const root = join(import.meta.dirname, "..");
const dist = join(root, "dist", "src");
const { values } = parseArgs({ options: { members: { type: "string", default: "60000,200000" }, workers: { type: "string" }, "heap-modes": { type: "string", default: "size,speed" } } });
const { openDatabase } = await import(join(dist, "store", "database.js"));
const { applySeed } = await import(join(dist, "demo", "store-seed.js"));
const { DEMO_DATASET } = await import(join(dist, "demo", "demo-dataset.js"));
const { systemClock } = await import(join(dist, "clock.js"));
const { RevisionWriter } = await import(join(dist, "store", "revision-writer.js"));
const { createSqliteStores } = await import(join(dist, "store", "stores.js"));
const { BatchCheckRequest, DecisionServiceClient } = await import(join(dist, "gen", "bulkhead", "v1", "decision.js"));

const mib = (kb) => (Number.parseInt(kb, 10) / 1024).toFixed(0);
const rows = [];
const metric = (text, name) => Number(text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m"))?.[1] ?? Number.NaN);
for (const members of values.members.split(",").map(Number)) for (const heapMode of values["heap-modes"].split(",")) {
  const dbPath = join(mkdtempSync(join(tmpdir(), "bulkhead-rss-")), "b.db");
  const db = openDatabase(dbPath);
  applySeed(new RevisionWriter(db, systemClock), createSqliteStores(db), DEMO_DATASET);
  const insert = db.prepare("INSERT INTO memberships (tenant_id, actor_id, actor_type, role, status, created_at, updated_at) VALUES ('ten_acme', ?, 'user', 'member', 'active', 0, 0)");
  db.transaction(() => { for (let i = 0; i < members; i++) insert.run(`usr_m${i}`); })();
  db.close();
  const env = { ...process.env, BULKHEAD_HEAP_MODE: heapMode, ...(values.workers && { BULKHEAD_POLICY_WORKERS: values.workers }) };
  const child = spawn(process.execPath, [join(dist, "cli", "main.js"), "serve", "--db", dbPath, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--no-watch"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let out = "";
  const [port, httpPort] = await new Promise((resolve) => child.stderr.on("data", (d) => {
    out += d;
    const grpc = out.match(/gRPC listening on 127\.0\.0\.1:(\d+)\n/);
    const http = out.match(/HTTP listening on 127\.0\.0\.1:(\d+)\n/);
    if (grpc && http) resolve([grpc[1], http[1]]);
  }));
  const memory = () => Object.fromEntries(readFileSync(`/proc/${child.pid}/status`, "utf8").split("\n").filter((l) => /^Vm(HWM|RSS):/.test(l)).map((l) => l.split(/:\s+/)));
  const atStart = memory();
  const client = new DecisionServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  for (let b = 0; b < members / 1000; b++) {
    const checks = Array.from({ length: 1000 }, (_, i) => ({ principal: { tenantId: "ten_acme", actorId: `usr_m${b * 1000 + i}` }, action: "projects.read", resource: { type: "project", id: "p", tenantId: "ten_acme" } }));
    await new Promise((resolve, reject) => client.batchCheck(BatchCheckRequest.fromPartial({ checks }), new Metadata(), (e, r) => (e ? reject(e) : resolve(r))));
    if (b % 20 === 0) process.stderr.write(`serve-memory: heap mode ${heapMode}, ${members} members, ${b * 1000} checked\n`);
  }
  const after = memory();
  const scrape = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  rows.push({
    "distinct members": members, "heap mode": heapMode,
    "RSS at start MiB": mib(atStart.VmRSS), "peak RSS MiB": mib(after.VmHWM), "RSS after MiB": mib(after.VmRSS),
    "heap used MiB": (metric(scrape, "nodejs_heap_size_used_bytes") / 2 ** 20).toFixed(0),
    "heap total MiB": (metric(scrape, "nodejs_heap_size_total_bytes") / 2 ** 20).toFixed(0),
    "context cache MiB": (metric(scrape, "bulkhead_context_cache_bytes") / 2 ** 20).toFixed(0),
    workers: values.workers ?? "default",
  });
  client.close();
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));
}
console.log(JSON.stringify(machineDetails({ members: values.members }), null, 2));
console.log(table(rows, Object.keys(rows[0])));
