// Consume throughput and latency, one process vs two processes metering the
// same SQLite file (the cross-process race-safety path), plus the same call
// through gRPC against a sidecar. Uses the compiled code: npm run build first.
//
//   node bench/consume.mjs [--seconds 8] [--concurrency 16] [--sync-repetitions 3]
//
// The durability rows compare SQLite's synchronous=NORMAL (the default: in WAL
// mode a commit is not fsynced; a power loss can lose the last acknowledged
// commits, never corrupt the file) with FULL (the WAL is fsynced at every
// commit), interleaved per repetition so a busy neighbour hits both alike,
// with CPU time per call beside throughput. The store file is created beside
// the repository (not in a tmpfs), so fsync is real.
//
// Prints a table with the machine's details and writes
// bench/results/consume-<date>.{md,json}.
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { machineDetails, percentile, table } from "./machine.mjs";

const root = join(import.meta.dirname, "..");
const dist = join(root, "dist", "src");
const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" }, concurrency: { type: "string", default: "16" }, worker: { type: "string" },
    "sync-repetitions": { type: "string", default: "3" },
  },
});
const seconds = Number(values.seconds);
const TENANT = "ten_bench";
const METER = "exports.csv.monthly";

async function openMetering(dbPath) {
  const { openDatabase } = await import(join(dist, "store", "database.js"));
  const { RevisionWriter } = await import(join(dist, "store", "revision-writer.js"));
  const { createSqliteStores } = await import(join(dist, "store", "stores.js"));
  const { meteringFor } = await import(join(dist, "compose.js"));
  const { systemClock } = await import(join(dist, "clock.js"));
  const db = openDatabase(dbPath);
  // Seeding needs the stores and a writer; metering gets its own over the same file.
  return { db, stores: createSqliteStores(db), writer: new RevisionWriter(db, systemClock), metering: meteringFor(db, systemClock) };
}

/** Worker mode: consume for `seconds`, report latencies (ms) as JSON on stdout. */
async function worker(dbPath, prefix) {
  const { db, metering } = await openMetering(dbPath);
  if (process.env.BENCH_SYNC) db.pragma(`synchronous = ${process.env.BENCH_SYNC}`);
  const cpuStart = process.cpuUsage();
  const latencies = [];
  const end = performance.now() + seconds * 1000;
  let i = 0;
  let errors = 0;
  while (performance.now() < end) {
    const start = performance.now();
    try {
      metering.consume({ tenantId: TENANT, meter: METER, amount: 1, idempotencyKey: `${prefix}-${i++}` });
    } catch {
      errors++;
    }
    latencies.push(performance.now() - start);
  }
  const cpu = process.cpuUsage(cpuStart);
  db.close();
  process.stdout.write(JSON.stringify({ latencies, errors, cpuMs: (cpu.user + cpu.system) / 1000 }));
}

async function prepareDatabase(onDisk = false) {
  if (onDisk) mkdirSync(join(root, "bench", "results"), { recursive: true });
  const dir = onDisk ? mkdtempSync(join(root, "bench", "results", ".consume-")) : mkdtempSync(join(tmpdir(), "bulkhead-bench-"));
  const dbPath = join(dir, "bench.db");
  const { db, stores, writer } = await openMetering(dbPath);
  const { applySeed } = await import(join(dist, "demo", "store-seed.js"));
  const { DEMO_DATASET } = await import(join(dist, "demo", "demo-dataset.js"));
  applySeed(writer, stores, DEMO_DATASET);
  applySeed(writer, stores, {
    tenants: [{ id: TENANT, slug: "bench", planCode: "pro" }],
    memberships: [{ tenantId: TENANT, actorId: "usr_bench", role: "owner" }],
    // No hard limit: every call does the full read-check-increment and commits.
    limitOverrides: [{ tenantId: TENANT, meter: METER, soft: null, hard: null, reason: "benchmark", author: "bench", expiresAt: null }],
  });
  db.close();
  return dbPath;
}

function summarise(row, results, wallSeconds) {
  const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return {
    row,
    "calls/s": Math.round(latencies.length / wallSeconds),
    "p50 ms": percentile(latencies, 50).toFixed(3),
    "p99 ms": percentile(latencies, 99).toFixed(3),
    "p99.9 ms": percentile(latencies, 99.9).toFixed(3),
    calls: latencies.length,
    errors: results.reduce((n, r) => n + r.errors, 0),
  };
}

async function runWorkers(dbPath, count, sync = "") {
  const run = (i) =>
    promisify(execFile)(process.execPath, [import.meta.filename, "--worker", dbPath, "--seconds", String(seconds)], {
      maxBuffer: 512 * 1024 * 1024,
      env: { ...process.env, BENCH_PREFIX: `w${count}-${i}-${sync}-${Math.random()}`, BENCH_SYNC: sync },
    }).then(({ stdout }) => JSON.parse(stdout));
  return Promise.all(Array.from({ length: count }, (_, i) => run(i)));
}

async function grpcRow(dbPath, concurrency) {
  const port = 50100 + Math.floor(Math.random() * 500);
  const server = spawn(process.execPath, [join(dist, "cli", "main.js"), "serve", "--db", dbPath, "--grpc-addr", `127.0.0.1:${port}`, "--http-addr", "127.0.0.1:0", "--no-watch"], { stdio: ["ignore", "ignore", "pipe"] });
  const { readyAddresses } = await import(join(dist, "cli", "ready-line.js"));
  let stderr = "";
  await new Promise((resolve, reject) => {
    server.stderr.on("data", (d) => readyAddresses((stderr += d)).length > 0 && resolve());
    server.on("exit", (code) => reject(new Error(`sidecar exited with ${code}`)));
  });
  const grpc = await import("@grpc/grpc-js");
  const { EntitlementServiceClient, ConsumeRequest } = await import(join(dist, "gen", "bulkhead", "v1", "entitlements.js"));
  const client = new EntitlementServiceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const latencies = [];
  let errors = 0;
  let i = 0;
  const end = performance.now() + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      await new Promise((resolve) =>
        client.consume(ConsumeRequest.fromPartial({ tenantId: TENANT, meter: METER, amount: 1, idempotencyKey: `grpc-${i++}` }), (error) => {
          if (error) errors++;
          resolve();
        }),
      );
      latencies.push(performance.now() - start);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const wall = (performance.now() - started) / 1000;
  client.close();
  server.kill("SIGTERM");
  return summarise(`gRPC Consume, 1 sidecar, ${concurrency} in flight`, [{ latencies, errors }], wall);
}

/**
 * synchronous=NORMAL vs FULL for acknowledged writes, one process, interleaved
 * per repetition (NORMAL FULL, FULL NORMAL, ...). Per mode: the median
 * repetition's calls/s, latencies over all repetitions, CPU us per call.
 */
async function durabilityRows(repetitions) {
  const dbPath = await prepareDatabase(true);
  const modes = ["NORMAL", "FULL"];
  const runs = { NORMAL: [], FULL: [] };
  for (let r = 0; r < repetitions; r++) {
    for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
      const [result] = await runWorkers(dbPath, 1, mode);
      runs[mode].push(result);
      console.error(`bench: durability repetition ${r + 1}/${repetitions}, synchronous=${mode}: ${Math.round(result.latencies.length / seconds)} calls/s`);
    }
  }
  rmSync(dirname(dbPath), { recursive: true, force: true });
  return modes.map((mode) => {
    const perRun = runs[mode].map((r) => r.latencies.length / seconds).sort((a, b) => a - b);
    const calls = runs[mode].reduce((n, r) => n + r.latencies.length, 0);
    const cpuMs = runs[mode].reduce((n, r) => n + r.cpuMs, 0);
    return {
      ...summarise(`in-process Consume, synchronous=${mode}`, runs[mode], seconds * repetitions),
      "calls/s": Math.round(perRun[Math.floor(perRun.length / 2)]),
      "CPU us/call": ((cpuMs * 1000) / calls).toFixed(1),
    };
  });
}

async function main() {
  if (values.worker) return worker(values.worker, process.env.BENCH_PREFIX ?? "w");
  const dbPath = await prepareDatabase();
  const rows = [];
  console.error(`bench: Consume for ${seconds}s per row...`);
  rows.push(summarise("in-process Consume, 1 process", await runWorkers(dbPath, 1), seconds));
  console.error("bench: 1 process done");
  rows.push(summarise("in-process Consume, 2 processes, one file", await runWorkers(dbPath, 2), seconds));
  console.error("bench: 2 processes done");
  rows.push(await grpcRow(dbPath, Number(values.concurrency)));
  console.error("bench: gRPC done");
  const durability = await durabilityRows(Number(values["sync-repetitions"]));
  const machine = machineDetails({ seconds_per_row: seconds });
  const ratio = (rows[1]["calls/s"] / rows[0]["calls/s"]).toFixed(2);
  const columns = ["row", "calls/s", "p50 ms", "p99 ms", "p99.9 ms", "calls", "errors"];
  const markdown = [
    "# Consume benchmark",
    "",
    ...Object.entries(machine).map(([k, v]) => `- ${k}: ${v}`),
    "",
    table(rows, columns),
    "",
    `Two processes / one process throughput: ${ratio}x (writes serialise on SQLite's lock; the point is that they stay correct).`,
    "",
    "## Durability: synchronous=NORMAL vs FULL (WAL), interleaved",
    "",
    table(durability, [...columns, "CPU us/call"]),
    "",
    `FULL / NORMAL: ${(durability[1]["calls/s"] / durability[0]["calls/s"]).toFixed(2)}x the calls/s, ` +
      `${(Number(durability[1]["CPU us/call"]) / Number(durability[0]["CPU us/call"])).toFixed(2)}x the CPU per call.`,
  ].join("\n");
  console.log(markdown);
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  const stamp = machine.date.slice(0, 10);
  writeFileSync(join(root, "bench", "results", `consume-${stamp}.md`), markdown + "\n");
  writeFileSync(join(root, "bench", "results", `consume-${stamp}.json`), JSON.stringify({ machine, rows, durability }, null, 2) + "\n");
}

await main();
