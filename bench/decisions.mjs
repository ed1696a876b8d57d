// The decision benchmark of issue 7: Bulkhead against a null grpc-js server,
// an OPA server on the same Rego and data, and Cerbos on the same rules
// (issue 19, bench/peers/cerbos/), in one session, as ratios. Uses the compiled code: `npm run bench` builds first.
//
//   node bench/decisions.mjs --help
//
// Each row: warm-up, a throughput probe (as fast as the load tool can push),
// then a sustained run at 85% of the probe's rate whose latencies are reported;
// repeated, medians reported. Server and load tool are pinned to different
// cores with taskset when the machine has two or more.
// Writes bench/results/<date>.{md,json}; progress goes to stderr.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { execFileSync, execFile } from "node:child_process";
import { promisify } from "node:util";
import { machineDetails, median, percentile, table } from "./machine.mjs";
import { requestMix, SHAPE } from "./lib/request-mix.mjs";
import { seedStore } from "./lib/seed-store.mjs";
import { bulkheadReady, cpuMs, freePort, ghz, peakRssMiB, pinning, startServer, stopServer, tool, vegeta, waitForHttp } from "./lib/load-tools.mjs";
import { bodySizes, CERBOS_METHOD, cerbosAgreement, cerbosBinary, cerbosCheck, cerbosSchemas, startCerbos } from "./lib/cerbos-peer.mjs";
import { soak } from "./lib/soak.mjs";
import { CLIENT_COLUMNS, clientRows } from "./lib/client-rows.mjs";
import * as fixedRate from "./lib/fixed-rate.mjs";

const root = join(import.meta.dirname, "..");
const dist = join(root, "dist", "src");
const policyDir = join(root, "dist", "policies");

const ROWS = {
  b0: "B0 floor: null grpc-js Check",
  "check-cold": "Bulkhead Check, unary, cache cold",
  "check-warm": "Bulkhead Check, unary, cache warm",
  "check-warm-speed": "Bulkhead Check, unary, cache warm, BULKHEAD_HEAP_MODE=speed",
  "check-warm-nocache": "Bulkhead Check, unary, cache warm, decision cache off (BULKHEAD_DECISION_CACHE_MB=0)",
  "check-warm-unique": "Bulkhead Check, unary, contexts warm, every resource id unique (decision-cache misses)",
  batch: "Bulkhead BatchCheck, 100 per call",
  stream: "Bulkhead CheckStream, one stream per worker",
  inproc: "Bulkhead engine in process (Decider), warm",
  "inproc-nocache": "Bulkhead engine in process (Decider), warm, decision cache off",
  "inproc-cold": "Bulkhead engine in process (Decider), cold",
  opa: "OPA server REST, full input precomputed",
  cerbos: "Cerbos gRPC CheckResources, attributes precomputed",
  workers2: "bulkhead serve --workers 2, Check, warm",
  client: "bulkhead/client: coalescing vs unary (100 concurrent isAllowed), in-process transport",
};
Object.assign(ROWS, fixedRate.fixedRateRows(ROWS)); // fixed-b0, fixed-check-warm, ...: bench/lib/fixed-rate.mjs

const HELP = `node bench/decisions.mjs [options]   (npm run bench builds first, then runs this)

  --rows a,b,...        rows to run (default all): ${Object.keys(ROWS).join(", ")}
  --repetitions N       repetitions per row, medians reported (default 3)
  --warmup S            warm-up seconds per repetition (default 3)
  --probe S             throughput-probe seconds (default 5)
  --sustain S           sustained-run seconds at 85% of the probe (default 10)
  --fixed-rate R        calls/s for every fixed-* row (default ${fixedRate.DEFAULT_FIXED_RATE}), lowered to
                        ${fixedRate.HEADROOM * 100}% of the lowest capacity a probe pass finds
  --quick               smoke run: 1 repetition, 1 s warm-up, 2 s probe, 3 s sustained
  --soak-minutes M      also run the soak (policy hot reloads + webhook writes under load);
                        default 0 = off; the issue's soak is 10
  --client-rounds N     client rows: interleaved rounds (default 5; --quick 2)
  --client-bursts N     client rows: bursts of 100 decisions per mode per round (default 40; --quick 10)
  --seed N              request-mix / store seed (default 7)
  --no-write            print only; do not write bench/results/
  --help

Load tools (installed with go install at the versions pinned in scripts/ensure-tool.sh):
ghz for gRPC, vegeta for OPA's REST API, and opa itself. Cerbos is the binary of the
devDependency @cerbos/cerbos-linux-x64 (npm ci), config in bench/peers/cerbos/.`;

const { values } = parseArgs({
  options: {
    rows: { type: "string" },
    repetitions: { type: "string" },
    warmup: { type: "string" },
    probe: { type: "string" },
    sustain: { type: "string" },
    "fixed-rate": { type: "string" },
    quick: { type: "boolean" },
    "soak-minutes": { type: "string", default: "0" },
    "client-rounds": { type: "string" },
    "client-bursts": { type: "string" },
    seed: { type: "string", default: "7" },
    "no-write": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const quick = values.quick ?? false;
const opts = {
  repetitions: Number(values.repetitions ?? (quick ? 1 : 3)),
  warmup: Number(values.warmup ?? (quick ? 1 : 3)),
  probe: Number(values.probe ?? (quick ? 2 : 5)),
  sustain: Number(values.sustain ?? (quick ? 3 : 10)),
  clientRounds: Number(values["client-rounds"] ?? (quick ? 2 : 5)),
  clientBursts: Number(values["client-bursts"] ?? (quick ? 10 : 40)),
  seed: Number(values.seed),
  fixedRate: Number(values["fixed-rate"] ?? fixedRate.DEFAULT_FIXED_RATE),
};
const selected = values.rows ? values.rows.split(",").map((r) => r.trim()) : Object.keys(ROWS);
for (const r of selected) if (!ROWS[r]) throw new Error(`unknown row ${r}; rows: ${Object.keys(ROWS).join(", ")}`);

const progress = (message) => process.stderr.write(`bench: ${message}\n`);
const cores = (await import("node:os")).cpus().length;
// Server on core 0, load tool on core 1 (when there are two cores to pin to).
const SERVER_CORE = cores >= 2 ? "0" : null;
const LOAD_CORE = cores >= 2 ? "1" : null;
const BATCH = 100;
const STREAM_MESSAGES = 1000;

const work = mkdtempSync(join(tmpdir(), "bulkhead-decisions-"));
const bins = { ghz: tool(root, "ghz"), vegeta: tool(root, "vegeta"), opa: tool(root, "opa") };

function actions() {
  return Object.keys(JSON.parse(readFileSync(join(policyDir, "data.json"), "utf8")).bulkhead.actions);
}

async function prepare() {
  progress(`seeding ${SHAPE.tenants} tenants, ${SHAPE.tenants * SHAPE.membersPerTenant} memberships into ${work}`);
  const started = performance.now();
  const seeded = await seedStore(dist, join(work, "seed.db"), opts.seed);
  progress(`seeded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const catalog = actions();
  const warm = requestMix({ seed: opts.seed, count: 5_000, principals: SHAPE.hotPrincipals, actions: catalog });
  const cold = requestMix({ seed: opts.seed + 1, count: SHAPE.coldPrincipals, principals: SHAPE.coldPrincipals, actions: catalog, sequential: true });
  // The warm principals, but 100,000 distinct resource ids: a run repeats no
  // request, so the decision cache cannot win by repetition (issue 19).
  const warmUnique = requestMix({ seed: opts.seed + 2, count: 100_000, principals: SHAPE.hotPrincipals, actions: catalog });
  const files = {
    warmUnique: join(work, "warm-unique.json"),
    warm: join(work, "warm.json"),
    cold: join(work, "cold.json"),
    batch: join(work, "batch.json"),
    stream: join(work, "stream.json"),
  };
  writeFileSync(files.warm, JSON.stringify(warm));
  writeFileSync(files.warmUnique, JSON.stringify(warmUnique));
  writeFileSync(files.cold, JSON.stringify(cold));
  const batches = [];
  for (let i = 0; i + BATCH <= warm.length; i += BATCH) batches.push({ checks: warm.slice(i, i + BATCH) });
  writeFileSync(files.batch, JSON.stringify(batches));
  writeFileSync(files.stream, JSON.stringify(warm.slice(0, STREAM_MESSAGES)));
  return { seeded, files, catalog };
}

/** A fresh copy of the seeded database per server start, so repetitions start equal. */
function freshDb() {
  const dir = mkdtempSync(join(work, "db-"));
  copyFileSync(join(work, "seed.db"), join(dir, "bench.db"));
  return join(dir, "bench.db");
}

const port = freePort;

async function bulkheadServer({ workers = 0, cores: pinTo = SERVER_CORE, dbPath = freshDb(), extraArgs = ["--no-watch"], env = {} } = {}) {
  const grpcPort = await port();
  const server = await startServer({
    command: process.execPath,
    args: [
      join(dist, "cli", "main.js"), "serve", "--db", dbPath, "--grpc-addr", `127.0.0.1:${grpcPort}`,
      "--http-addr", `127.0.0.1:${env.httpPort ?? 0}`, ...(workers ? ["--workers", String(workers)] : []), ...extraArgs,
    ],
    cores: pinTo,
    ready: bulkheadReady(workers || 1),
    env: { BULKHEAD_ADMIN_TOKEN: "bench-admin-token", BULKHEAD_POLICY_DIR: policyDir, ...env },
  });
  return { server, address: `127.0.0.1:${grpcPort}`, dbPath };
}

async function nullServer() {
  const p = await port();
  const server = await startServer({
    command: process.execPath, args: [join(root, "bench", "lib", "null-server.mjs"), dist, `127.0.0.1:${p}`],
    cores: SERVER_CORE, ready: /gRPC listening/,
  });
  return { server, address: `127.0.0.1:${p}` };
}

/** Warm-up, probe, sustained at 85% for one gRPC method; returns one repetition. */
async function grpcRepetition({ start, method, call, dataFile, perCall = 1, concurrency, connections, streamCount, loadCores = LOAD_CORE, rate, probeOnly, before: first }) {
  const { server, address } = await start();
  try {
    if (first) await first(address);
    const base = { bin: bins.ghz, root, address, method, call, dataFile, concurrency, connections, cores: loadCores, streamCount };
    await ghz({ ...base, seconds: opts.warmup });
    const probe = await ghz({ ...base, seconds: opts.probe });
    if (probeOnly) return { probeCallsPerS: probe.rps };
    const before = cpuMs(server.child.pid);
    const sustained = await ghz({ ...base, seconds: opts.sustain, rps: rate ?? probe.rps * 0.85 });
    sustained.serverCpuMs = cpuMs(server.child.pid) - before;
    sustained.serverArgv = server.argv;
    return repetition(probe, sustained, perCall, peakRssMiB(server.child.pid));
  } finally {
    await stopServer(server);
  }
}

function repetition(probe, sustained, perCall, peakRss) {
  const l = sustained.latencies;
  const decisions = sustained.count * perCall;
  return {
    serverCpuUsPerDecision: (sustained.serverCpuMs * 1000) / decisions,
    loadCpuUsPerDecision: sustained.loadCpuMs === undefined ? null : (sustained.loadCpuMs * 1000) / decisions,
    probeDecisionsPerS: probe.rps * perCall,
    probeCallsPerS: probe.rps,
    decisionsPerS: sustained.rps * perCall,
    callsPerS: sustained.rps,
    p50: percentile(l, 50),
    p90: percentile(l, 90),
    p99: percentile(l, 99),
    p999: percentile(l, 99.9),
    errors: sustained.errors + probe.errors,
    calls: sustained.count,
    peakRssMiB: peakRss,
    commands: { server: sustained.serverArgv, load: sustained.argv },
  };
}

async function inProcessRepetition(requestsFile, env = {}) {
  const pin = pinning(SERVER_CORE);
  const argv = [...pin, process.execPath, join(root, "bench", "lib", "in-process.mjs"), "run", dist, freshDb(), policyDir, requestsFile,
    String(opts.warmup), String(opts.probe), String(opts.sustain)];
  const { stdout } = await promisify(execFile)(argv[0], argv.slice(1), { maxBuffer: 1024 * 1024 * 1024, env: { ...process.env, ...env } });
  const r = JSON.parse(stdout);
  return { ...repetition({ rps: r.probe.rps, errors: 0 }, r.sustained, 1, r.peakRssMiB), memory: r.memory, decisionCache: r.decisionCache };
}

let precomputed;
/** Once per run: the full policy input and Bulkhead's answer for every warm request (OPA and Cerbos rows). */
async function precompute(files) {
  if (precomputed) return precomputed;
  progress("precomputing full policy inputs and Bulkhead's decisions for the warm mix");
  const expectedFile = join(work, "expected.json");
  await promisify(execFile)(process.execPath, [join(root, "bench", "lib", "in-process.mjs"), "precompute", dist, freshDb(), policyDir, files.warm, expectedFile], { maxBuffer: 1 << 28 });
  precomputed = JSON.parse(readFileSync(expectedFile, "utf8"));
  return precomputed;
}

/** OPA row, once: precompute inputs and Bulkhead's answers (the agreement check needs them). */
async function opaSetup(files) {
  return { expected: await precompute(files), disagreements: null };
}

/**
 * Cerbos row, once: one CheckResources request per warm request, its
 * attributes mapped from the precomputed policy input (cerbosCheck), in the
 * warm mix's order; the ghz data file.
 */
async function cerbosSetup(files) {
  const expected = await precompute(files);
  const warm = JSON.parse(readFileSync(files.warm, "utf8"));
  const requests = expected.map((e, i) => cerbosCheck(e.input, warm[i].principal.requestId));
  const dataFile = join(work, "cerbos.json");
  writeFileSync(dataFile, JSON.stringify(requests));
  const { CheckRequest } = await import(join(dist, "gen", "bulkhead", "v1", "decision.js"));
  const bulkheadBody = bodySizes((r) => CheckRequest.encode(CheckRequest.fromJSON(r)).finish(), warm);
  return { expected, requests, dataFile, bulkheadBody, cerbosBody: null, disagreements: null };
}

/** Before the first Cerbos load: agreement on every warm request, over gRPC; fails the run on any disagreement. */
async function cerbosFirstLook(state, address) {
  if (state.disagreements !== null) return;
  const schemas = await cerbosSchemas(address);
  state.cerbosBody = bodySizes(schemas.encode, state.requests);
  const { count, examples } = await cerbosAgreement({ address, schemas, requests: state.requests, expected: state.expected });
  state.disagreements = count;
  progress(`cerbos: ${count} disagreements with Bulkhead on ${state.requests.length} warm requests`);
  if (count > 0) {
    const lines = examples.map((x) => `  request ${x.index} ${x.action}: Bulkhead ${x.bulkhead ? "allow" : "deny"} (${x.bulkheadReasons.join(",") || "no reasons"}), Cerbos ${x.cerbos ? "allow" : "deny"}`);
    throw new Error(`Cerbos and Bulkhead disagree on ${count} of ${state.requests.length} warm requests; the first ${examples.length}:\n${lines.join("\n")}`);
  }
}

/** One repetition of the OPA row: start OPA, check agreement (first time only), load its REST API. */
async function opaRepetition(state, { rate, probeOnly } = {}) {
  const { expected } = state;
  {
    const p = await port();
    const url = `http://127.0.0.1:${p}/v1/data/bulkhead/decision`;
    const server = await startServer({
      command: bins.opa,
      args: ["run", "--server", "--addr", `127.0.0.1:${p}`, "--log-level", "error", "--skip-version-check", "--disable-telemetry",
        "--ignore", "*_test.rego", join(root, "policies")],
      cores: SERVER_CORE, ready: /^/,
    });
    try {
      await waitForHttp(`http://127.0.0.1:${p}/health`);
      if (state.disagreements === null) state.disagreements = await agreement(url, expected);
      const targets = join(work, "opa-targets.json");
      writeFileSync(targets, expected.map((e) => JSON.stringify({
        method: "POST", url, header: { "Content-Type": ["application/json"] },
        body: Buffer.from(JSON.stringify({ input: e.input })).toString("base64"),
      })).join("\n") + "\n");
      const base = { bin: bins.vegeta, targetsFile: targets, workers: 64, cores: LOAD_CORE };
      await vegeta({ ...base, seconds: opts.warmup });
      const probe = await vegeta({ ...base, seconds: opts.probe });
      if (probeOnly) return { probeCallsPerS: probe.rps };
      const before = cpuMs(server.child.pid);
      const sustained = await vegeta({ ...base, seconds: opts.sustain, rps: rate ?? probe.rps * 0.85 });
      sustained.serverCpuMs = cpuMs(server.child.pid) - before;
      sustained.serverArgv = server.argv;
      return repetition(probe, sustained, 1, peakRssMiB(server.child.pid));
    } finally {
      await stopServer(server);
    }
  }
}

/** Same decision = same allow and the same reason codes in the same order. */
async function agreement(url, expected) {
  let disagreements = 0;
  let next = 0;
  const worker = async () => {
    while (next < expected.length) {
      const e = expected[next++];
      const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ input: e.input }) });
      const result = (await response.json()).result ?? {};
      const codes = Array.isArray(result.reasons) ? result.reasons.map((r) => r.code) : ["policy_error"];
      if (result.allow !== e.allow || codes.join(",") !== e.reasons.join(",")) disagreements++;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return disagreements;
}

function summarise(id, reps, extra = {}) {
  const m = (k) => median(reps.map((r) => r[k]));
  return {
    id,
    row: ROWS[id],
    "decisions/s": Math.round(m("decisionsPerS")),
    "probe/s": Math.round(m("probeDecisionsPerS")),
    "p50 ms": m("p50").toFixed(3),
    "p99 ms": m("p99").toFixed(3),
    "p99.9 ms": m("p999").toFixed(3),
    errors: reps.reduce((n, r) => n + r.errors, 0),
    "server CPU us/decision": m("serverCpuUsPerDecision").toFixed(1),
    "load CPU us/decision": reps.some((r) => r.loadCpuUsPerDecision === null) ? "-" : m("loadCpuUsPerDecision").toFixed(1),
    "peak RSS MiB": Math.max(...reps.map((r) => r.peakRssMiB)).toFixed(0),
    reps,
    ...extra,
  };
}

async function runRows(files) {
  const results = [];
  const unary = { method: "Check", concurrency: 64, connections: 4 };
  const plans = {
    b0: (run) => grpcRepetition({ ...unary, start: nullServer, dataFile: files.warm, ...run }),
    "check-cold": () => grpcRepetition({ ...unary, start: () => bulkheadServer(), dataFile: files.cold }),
    "check-warm": (run) => grpcRepetition({ ...unary, start: () => bulkheadServer(), dataFile: files.warm, ...run }),
    "check-warm-speed": () => grpcRepetition({ ...unary, start: () => bulkheadServer({ env: { BULKHEAD_HEAP_MODE: "speed" } }), dataFile: files.warm }),
    "check-warm-nocache": () => grpcRepetition({ ...unary, start: () => bulkheadServer({ env: { BULKHEAD_DECISION_CACHE_MB: "0" } }), dataFile: files.warm }),
    "check-warm-unique": (run) => grpcRepetition({ ...unary, start: () => bulkheadServer(), dataFile: files.warmUnique, ...run }),
    batch: () => grpcRepetition({ method: "BatchCheck", start: () => bulkheadServer(), dataFile: files.batch, perCall: BATCH, concurrency: 8, connections: 2 }),
    stream: () => grpcRepetition({ method: "CheckStream", start: () => bulkheadServer(), dataFile: files.stream, perCall: STREAM_MESSAGES, streamCount: STREAM_MESSAGES, concurrency: 4, connections: 1 }),
    inproc: () => inProcessRepetition(files.warm),
    "inproc-nocache": () => inProcessRepetition(files.warm, { BULKHEAD_DECISION_CACHE_MB: "0" }),
    "inproc-cold": () => inProcessRepetition(files.cold),
    // Two workers need both cores: nothing is pinned, and the load tool shares them.
    workers2: () => grpcRepetition({ ...unary, start: () => bulkheadServer({ workers: 2, cores: null }), dataFile: files.warm, loadCores: null }),
  };
  const ids = selected.filter((id) => id !== "client"); // the client rows have their own table, in main()
  let opa;
  if (fixedRate.plannedRows(ids).includes("opa")) {
    opa = await opaSetup(files);
    plans.opa = (run) => opaRepetition(opa, run);
  }
  let cerbos;
  if (fixedRate.plannedRows(ids).includes("cerbos")) {
    cerbos = await cerbosSetup(files);
    // The same load shape and pinning as check-warm: server on core 0, ghz on core 1, 64 in flight over 4 connections.
    plans.cerbos = (run) => grpcRepetition({
      ...unary, call: CERBOS_METHOD, dataFile: cerbos.dataFile, before: (address) => cerbosFirstLook(cerbos, address),
      start: () => startCerbos({ root, cores: SERVER_CORE }), ...run,
    });
  }
  const fixedPeers = ids.filter(fixedRate.isFixedRow).map((id) => id.slice("fixed-".length));
  if (fixedPeers.length) {
    fixed.choice = await fixedRate.probeAndChoose({ peers: fixedPeers, plans, requested: opts.fixedRate, progress });
    Object.assign(plans, fixedRate.fixedRatePlans({ ids, plans, rate: fixed.choice.rate, peerInfo: fixed.peerInfo, root }));
  }
  // Rows are interleaved within each repetition (A B C, then B C A, ...), so a
  // neighbour busy for a minute slows every row alike instead of one row.
  const reps = Object.fromEntries(ids.map((id) => [id, []]));
  for (let i = 0; i < opts.repetitions; i++) {
    for (const id of rotate(ids, i)) {
      const r = await plans[id]();
      reps[id].push(r);
      progress(`${id}: repetition ${i + 1}/${opts.repetitions}: ${Math.round(r.decisionsPerS)} decisions/s, p99 ${r.p99.toFixed(2)} ms, server CPU ${r.serverCpuUsPerDecision.toFixed(1)} us/decision`);
    }
  }
  for (const id of ids) {
    if (fixedRate.isFixedRow(id)) {
      fixed.rows.push(fixedRate.summariseFixed(id, ROWS[id], reps[id], fixed.choice.rate));
      continue;
    }
    if (id === "opa") {
      results.push(summarise(id, reps[id], { note: `OPA vs Bulkhead disagreements on ${opa.expected.length} requests: ${opa.disagreements}`, disagreements: opa.disagreements }));
      continue;
    }
    if (id === "cerbos") {
      const size = (b) => `mean ${b.mean.toFixed(0)} B, max ${b.max} B`;
      const note = [
        `Cerbos vs Bulkhead disagreements (allow/deny) on ${cerbos.requests.length} requests (${cerbos.expected.filter((e) => e.allow).length} allowed by Bulkhead): ${cerbos.disagreements}`,
        `request body (protobuf): Cerbos CheckResources ${size(cerbos.cerbosBody)}, Bulkhead Check ${size(cerbos.bulkheadBody)}`,
        "settings: bench/peers/cerbos/config.yaml (disk store, audit off, no schemas, telemetry off), --log-level=error, ghz through server reflection, -c 64 over 4 connections as check-warm",
      ].join("; ");
      results.push(summarise(id, reps[id], { note, disagreements: cerbos.disagreements, requestBytes: { cerbos: cerbos.cerbosBody, bulkhead: cerbos.bulkheadBody } }));
      continue;
    }
    const wasm = reps[id].find((r) => r.memory)?.memory;
    const cache = reps[id].find((r) => r.decisionCache)?.decisionCache;
    // The warm mix repeats its 5,000 requests, so this hit rate is the mix's, not real traffic's.
    const hitRate = cache && `decision cache ${((100 * cache.hits) / (cache.hits + cache.misses)).toFixed(1)}% hits (${cache.entries} entries, ${(cache.bytes / 2 ** 20).toFixed(1)} MiB)`;
    const notes = [wasm && `Wasm linear memory ${wasm.wasmBytesAtStart / 1024} KiB at start, ${wasm.wasmBytesAtEnd / 1024} KiB after ${reps[id][0].calls}+ decisions`, hitRate].filter(Boolean);
    const note = notes.length ? notes.join("; ") : undefined;
    results.push(summarise(id, reps[id], note ? { note } : {}));
  }
  return results;
}

/** The fixed-rate rows' own table: the chosen rate, rows, and each peer's commands and body size. */
const fixed = { choice: null, rows: [], peerInfo: {} };

const rotate = (list, n) => list.map((_, i) => list[(i + n) % list.length]);

function versions() {
  const opa = execFileSync(bins.opa, ["version"], { encoding: "utf8" }).match(/^Version: (.*)$/m)?.[1] ?? "?";
  const goVersion = (bin) => {
    try {
      return execFileSync("go", ["version", "-m", bin], { encoding: "utf8" }).match(/^\s+mod\s+\S+\s+(\S+)/m)?.[1] ?? "?";
    } catch {
      return "?";
    }
  };
  const cerbos = selected.includes("cerbos") ? execFileSync(cerbosBinary(root), ["--version"], { encoding: "utf8" }).split("\n")[0].trim() : undefined;
  return { opa, ghz: goVersion(bins.ghz), vegeta: goVersion(bins.vegeta), ...(cerbos ? { cerbos } : {}) };
}

function targets(rows) {
  const by = Object.fromEntries(rows.map((r) => [r.id, r]));
  const out = [];
  const ratio = (a, b) => (a && b ? a["decisions/s"] / b["decisions/s"] : NaN);
  const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
  // CPU per decision is what a busy neighbour cannot move much; throughput
  // ratios are shown beside it, from the same interleaved repetitions.
  const cpu = (row) => Number(row["server CPU us/decision"]);
  // Issue 19's targets, judged from server CPU per decision in this run.
  if (by["check-warm"] && by.b0) {
    const x = cpu(by["check-warm"]) / cpu(by.b0);
    out.push({ target: "check-warm (decision-cache hits): server CPU per decision <= 1.3 x B0's", value: `${fmt(x)} x B0 (${cpu(by["check-warm"]).toFixed(0)} vs ${cpu(by.b0).toFixed(0)} us)`, met: x <= 1.3 ? "yes" : "no" });
  }
  for (const id of ["check-warm", "check-warm-unique"]) {
    if (!by[id] || !by.opa) continue;
    const perCore = cpu(by.opa) / cpu(by[id]);
    const value = `${fmt(perCore)} x OPA (${cpu(by[id]).toFixed(0)} vs ${cpu(by.opa).toFixed(0)} us server CPU per decision; decisions/s ${fmt(ratio(by[id], by.opa))} x)`;
    if (id === "check-warm") out.push({ target: "check-warm: Bulkhead per server core >= 2.5 x OPA REST", value, met: perCore >= 2.5 ? "yes" : "no" });
    else out.push({ target: `(info) ${id}: Bulkhead per server core vs OPA REST`, value, met: "-" });
  }
  for (const [id, limit, what] of [["inproc", 50, "hits"], ["inproc-nocache", 80, "misses: every decision evaluated"]]) {
    if (!by[id]) continue;
    const us = Number(by[id]["p99 ms"]) * 1000;
    out.push({ target: `${id} (${what}): p99 <= ${limit} us per decision`, value: `p99 ${us.toFixed(0)} us`, met: us <= limit ? "yes" : "no" });
  }
  // Issue 7's targets, kept so old runs compare.
  for (const id of ["check-cold", "check-warm"]) {
    if (!by[id] || !by.b0) continue;
    const r = ratio(by[id], by.b0);
    const p99 = Number(by[id]["p99 ms"]);
    out.push({ target: `(issue 7) ${id}: >= 0.7 x B0 decisions/s, p99 <= 10 ms`, value: `${fmt(r)} x B0, p99 ${p99.toFixed(2)} ms`, met: r >= 0.7 && p99 <= 10 ? "yes" : "no" });
  }
  for (const id of ["batch", "stream"]) {
    if (!by[id] || !by.opa) continue;
    const r = ratio(by[id], by.opa);
    out.push({ target: `(issue 7) ${id}: >= 2 x OPA REST unary decisions/s`, value: `${fmt(r)} x OPA; per server core ${fmt(cpu(by.opa) / cpu(by[id]))} x`, met: r >= 2 ? "yes" : "no" });
  }
  // Bulkhead per server core vs Cerbos (issue 19: >= Cerbos gRPC on the same rules), from CPU per decision.
  for (const id of ["check-warm", "check-warm-unique", "batch", "stream"]) {
    if (!by[id] || !by.cerbos) continue;
    const perCore = cpu(by.cerbos) / cpu(by[id]);
    const value = `${fmt(perCore)} x Cerbos (${cpu(by[id]).toFixed(0)} vs ${cpu(by.cerbos).toFixed(0)} us server CPU per decision; decisions/s ${fmt(ratio(by[id], by.cerbos))} x)`;
    if (id === "check-warm") out.push({ target: "check-warm: Bulkhead per server core >= Cerbos gRPC", value, met: perCore >= 1 ? "yes" : "no" });
    else out.push({ target: `(info) ${id}: Bulkhead per server core vs Cerbos gRPC`, value, met: "-" });
  }
  if (by["check-warm-unique"]) {
    const us = cpu(by["check-warm-unique"]);
    out.push({ target: "check-warm-unique (decision-cache misses): server CPU <= 150 us per decision", value: `${us.toFixed(0)} us`, met: us <= 150 ? "yes" : "no" });
  }
  if (by["check-warm"] && by["check-warm-speed"]) {
    const size = by["check-warm"];
    const speed = by["check-warm-speed"];
    out.push({
      target: "(info) heap mode size vs speed, warm Check (ADR 67)",
      value: `${fmt(ratio(size, speed))} x the decisions/s, ${fmt(cpu(size) / cpu(speed))} x the server CPU per decision, peak RSS ${size["peak RSS MiB"]} vs ${speed["peak RSS MiB"]} MiB`,
      met: "-",
    });
  }
  for (const [on, off] of [["check-warm", "check-warm-nocache"], ["inproc", "inproc-nocache"]]) {
    if (!by[on] || !by[off]) continue;
    out.push({
      target: `(info) decision cache on vs off, ${on} (ADR 68)`,
      value: `${fmt(cpu(by[on]) / cpu(by[off]))} x the server CPU per decision, ${fmt(ratio(by[on], by[off]))} x the decisions/s, p50 ${by[on]["p50 ms"]} vs ${by[off]["p50 ms"]} ms, p99 ${by[on]["p99 ms"]} vs ${by[off]["p99 ms"]} ms`,
      met: "-",
    });
  }
  if (by["inproc-cold"]) out.push({ target: "(issue 7) inproc-cold: p99 <= 100 us per decision", value: `p99 ${(Number(by["inproc-cold"]["p99 ms"]) * 1000).toFixed(0)} us`, met: Number(by["inproc-cold"]["p99 ms"]) <= 0.1 ? "yes" : "no" });
  const bulkheadRss = rows.filter((r) => !["b0", "opa", "cerbos", "workers2", "check-warm-speed", "check-warm-nocache"].includes(r.id) && !r.id.startsWith("inproc")).map((r) => Number(r["peak RSS MiB"]));
  if (bulkheadRss.length) {
    const peak = Math.max(...bulkheadRss);
    // A million distinct principals is bench/serve-memory.mjs's row (npm run bench:serve-memory -- --members 1000000).
    out.push({ target: "peak RSS <= 256 MiB (one sidecar, seeded store, this run's rows)", value: `${peak} MiB`, met: peak <= 256 ? "yes" : "no" });
  }
  if (by.workers2 && by["check-warm"]) {
    out.push({ target: "(info) --workers 2 vs one process, warm Check", value: `${fmt(ratio(by.workers2, by["check-warm"]))} x`, met: "-" });
  }
  if (by.opa) out.push({ target: "OPA and Bulkhead agree (0 disagreements)", value: String(by.opa.disagreements), met: by.opa.disagreements === 0 ? "yes" : "no" });
  if (by.cerbos) out.push({ target: "Cerbos and Bulkhead agree on allow/deny (0 disagreements)", value: String(by.cerbos.disagreements), met: by.cerbos.disagreements === 0 ? "yes" : "no" });
  return out;
}

async function main() {
  const { seeded, files } = await prepare();
  const rows = await runRows(files);
  const hostClient = selected.includes("client")
    ? await clientRows({ root, dist, policyDir, requestsFile: files.warm, bulkheadServer, stopServer, freshDb, loadCore: LOAD_CORE, rounds: opts.clientRounds, bursts: opts.clientBursts })
    : [];
  for (const r of hostClient) progress(`${r.id}: ${r["decisions/s"]} decisions/s, p99 ${r["p99 ms"]} ms, ${r["RPCs per 100"]} RPCs per 100`);
  const soakMinutes = Number(values["soak-minutes"]);
  const soakResult = soakMinutes > 0 ? await soak({ minutes: soakMinutes, bins, root, dist, policyDir, work, freshDb, bulkheadServer, files, progress, port }) : null;
  const machine = machineDetails({
    ...versions(),
    pinning: SERVER_CORE ? `server taskset -c ${SERVER_CORE}, load tool taskset -c ${LOAD_CORE} (workers2: unpinned)` : "none (one core)",
    store: `${seeded.tenants} tenants, ${seeded.memberships} memberships, ${seeded.plans} plans`,
    repetitions: opts.repetitions,
    seconds: `warm-up ${opts.warmup}, probe ${opts.probe}, sustained ${opts.sustain} at 85% of probe`,
  });
  const goals = targets(rows);
  const columns = ["row", "decisions/s", "probe/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU us/decision", "load CPU us/decision", "errors", "peak RSS MiB"];
  const markdown = [
    "# Decision benchmark",
    "",
    ...Object.entries(machine).map(([k, v]) => `- ${k}: ${v}`),
    "",
    table(rows, columns),
    "",
    "decisions/s and latencies are from the sustained run (85% of the probe), medians of the repetitions;",
    `BatchCheck latencies are per call (${BATCH} decisions), CheckStream latencies per stream (${STREAM_MESSAGES} decisions);`,
    "in-process latencies are per decision. Peak RSS is the largest VmHWM seen (workers2: primary + workers).",
    "Rows are interleaved within each repetition in a rotating order. CPU columns: the server's (and its workers') user + system time",
    "over the sustained run, and the load tool's (ghz, vegeta) over the same run, per decision; in-process rows are engine and load in one process.",
    ...rows.filter((r) => r.note).map((r) => `${r.row}: ${r.note}.`),
    "",
    "## Targets",
    "",
    table(goals, ["target", "value", "met"]),
    ...(fixed.rows.length ? [
      "",
      "## Fixed rate (the same calls/s for every system)",
      "",
      table(fixed.rows, fixedRate.FIXED_COLUMNS),
      "",
      ...fixedRate.fixedRateNotes({ choice: fixed.choice, rows: fixed.rows, peerInfo: fixed.peerInfo, seconds: opts.sustain }),
    ] : []),
    ...(hostClient.length ? [
      "",
      "## Host client (bulkhead/client)",
      "",
      table(hostClient, CLIENT_COLUMNS),
      "",
      `One load process (bench/lib/client-load.mjs, pinned apart from the sidecar) runs the three modes interleaved, ${opts.clientRounds} rounds in a rotating order,`,
      `${opts.clientBursts} x 100 decisions per mode per round, over the warm mix, after one warm-up pass. Concurrent modes: each decision's latency runs from its burst's`,
      "start to its own answer; in-process: one call at a time. CPU columns: this process's and the sidecar's CPU time over the mode's runs, per decision.",
    ] : []),
    ...(soakResult ? ["", "## Soak", "", ...soakResult.lines] : []),
  ].join("\n");
  console.log(markdown);
  if (!values["no-write"]) {
    mkdirSync(join(root, "bench", "results"), { recursive: true });
    const stamp = machine.date.slice(0, 10);
    writeFileSync(join(root, "bench", "results", `${stamp}.md`), markdown + "\n");
    const json = {
      machine, options: opts, rows: rows.map(({ reps, ...r }) => ({ ...r, repetitions: reps })), hostClient, targets: goals, soak: soakResult,
      fixedRate: fixed.choice && { ...fixed.choice, peers: fixed.peerInfo, rows: fixed.rows.map(({ reps, ...r }) => ({ ...r, repetitions: reps })) },
    };
    writeFileSync(join(root, "bench", "results", `${stamp}.json`), JSON.stringify(json, null, 2) + "\n");
    progress(`wrote bench/results/${stamp}.md and .json`);
  }
  rmSync(work, { recursive: true, force: true });
}

await main();
