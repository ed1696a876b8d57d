// The replicated-mode benchmark of issue 13: one sidecar in replicated mode
// (NATS JetStream, three nodes on loopback) against a single-node sidecar on
// the same seeded data. Uses the compiled code: `npm run bench:cluster`
// builds first.
//
//   node bench/cluster.mjs --help
//
// Rows, each repetition running single-node and replicated interleaved
// (A B, then B A, ...) on the same seeded store:
//   check  warm unary Check under ghz (warm-up, probe, sustained at 85%),
//          one sidecar; decisions/s, p50/p99, server CPU us per decision.
//   write  Consume one call at a time: acknowledged = stored in the stream
//          and applied locally (replicated) vs committed to SQLite (single);
//          then an admin write, AdminService PutMembership, the same way.
//   race   Consume spread over three sidecars racing on the same tenants'
//          meters (single-node: all on one); throughput and exactness
//          (allowed units == the counter on every sidecar).
// Then once: replication lag on sidecars 2 and 3 under a steady write rate on
// sidecar 1, from their /metrics and by timing min_revision Checks.
// Writes bench/results/cluster-<date>.{md,json}; progress goes to stderr.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { machineDetails, table } from "./machine.mjs";
import { requestMix, SHAPE } from "./lib/request-mix.mjs";
import { seedStore } from "./lib/seed-store.mjs";
import { bulkheadReady, cpuMs, freePort, ghz, peakRssMiB, startServer, stopServer, tool } from "./lib/load-tools.mjs";
import { startNatsCluster } from "./lib/nats-cluster.mjs";
import { exactness, metricValue, spread } from "./lib/cluster-stats.mjs";

const root = join(import.meta.dirname, "..");
const dist = join(root, "dist", "src");
const policyDir = join(root, "dist", "policies");

const HELP = `node bench/cluster.mjs [options]   (npm run bench:cluster builds first, then runs this)

  --repetitions N       interleaved repetitions of the check, write and race rows (default 3)
  --warmup S            check row: warm-up seconds (default 3)
  --probe S             check row: throughput-probe seconds (default 5)
  --sustain S           check row: sustained seconds at 85% of the probe (default 10)
  --writes N            write row: Consume calls, then as many PutMembership calls, one at a time, per mode (default 1000)
  --race-tenants N      race row: tenants racing per repetition (default 10)
  --race-limit N        race row: each tenant's hard limit; 1.5 x limit calls per tenant (default 300)
  --race-inflight N     race row: calls in flight (default 48)
  --lag-rate N          lag row: writes per second on sidecar 1 (default 200)
  --lag-seconds S       lag row: seconds of steady writes (default 20)
  --quick               smoke run (~2 min): 1 repetition, check 1/2/3 s, 200 writes,
                        4 tenants x limit 100, lag 200/s for 6 s
  --seed N              request-mix / store seed (default 7)
  --no-write            print only; do not write bench/results/
  --help

Tools: ghz (scripts/ensure-tool.sh ghz) and nats-server (scripts/ensure-tool.sh nats-server).`;

const { values } = parseArgs({
  options: {
    repetitions: { type: "string" }, warmup: { type: "string" }, probe: { type: "string" }, sustain: { type: "string" },
    writes: { type: "string" }, "race-tenants": { type: "string" }, "race-limit": { type: "string" }, "race-inflight": { type: "string" },
    "lag-rate": { type: "string" }, "lag-seconds": { type: "string" },
    quick: { type: "boolean" }, seed: { type: "string", default: "7" }, "no-write": { type: "boolean" }, help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const quick = values.quick ?? false;
const pick = (name, full, short) => Number(values[name] ?? (quick ? short : full));
const opts = {
  repetitions: pick("repetitions", 3, 1),
  warmup: pick("warmup", 3, 1),
  probe: pick("probe", 5, 2),
  sustain: pick("sustain", 10, 3),
  writes: pick("writes", 1000, 200),
  raceTenants: pick("race-tenants", 10, 4),
  raceLimit: pick("race-limit", 300, 100),
  raceInflight: pick("race-inflight", 48, 48),
  lagRate: pick("lag-rate", 200, 200),
  lagSeconds: pick("lag-seconds", 20, 6),
  seed: Number(values.seed),
};

function hasTaskset() {
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const progress = (message) => process.stderr.write(`bench: ${message}\n`);
const CORES = cpus().length;
const SERVER_CORE = CORES >= 2 && hasTaskset() ? "0" : null;
const LOAD_CORE = SERVER_CORE === null ? null : "1";
const STREAM = "BENCH";
const METER = "exports.csv.monthly";
const WRITE_TENANT = "ten_cbench_write";
const ADMIN_TOKEN = "bench-admin-token";
const KEY_SECRET = randomBytes(32).toString("hex");
const raceTenant = (rep, k) => `ten_cbench_r${rep}_${k}`;
// The lag row writes round-robin over these: writes to one meter serialise on its
// expected last sequence (one append at a time), which would cap the rate below 200/s.
const LAG_TENANTS = Array.from({ length: 20 }, (_, k) => `ten_cbench_lag_${k}`);

const work = mkdtempSync(join(tmpdir(), "bulkhead-cluster-"));
const bins = { ghz: tool(root, "ghz"), nats: tool(root, "nats-server") };
const grpc = await import("@grpc/grpc-js");
const { DecisionServiceClient, CheckRequest } = await import(join(dist, "gen", "bulkhead", "v1", "decision.js"));
const { EntitlementServiceClient, ConsumeRequest, GetEntitlementsRequest } = await import(join(dist, "gen", "bulkhead", "v1", "entitlements.js"));
const { AdminServiceClient, PutMembershipRequest } = await import(join(dist, "gen", "bulkhead", "v1", "admin.js"));
/** The actor the admin write row flips between two roles (a put of the role it has is answered without a write). */
const ADMIN_WRITE_ACTOR = "usr_cbench_admin_write";

/** The decisions bench's store, plus the tenants the write and race rows meter (same file for both modes). */
async function prepare() {
  progress(`seeding ${SHAPE.tenants} tenants, ${SHAPE.tenants * SHAPE.membersPerTenant} memberships into ${work}`);
  const dbPath = join(work, "seed.db");
  const seeded = await seedStore(dist, dbPath, opts.seed);
  const { openDatabase } = await import(join(dist, "store", "database.js"));
  const { RevisionWriter } = await import(join(dist, "store", "revision-writer.js"));
  const { createSqliteStores } = await import(join(dist, "store", "stores.js"));
  const { applySeed } = await import(join(dist, "demo", "store-seed.js"));
  const { systemClock } = await import(join(dist, "clock.js"));
  const db = openDatabase(dbPath);
  const unlimited = [WRITE_TENANT, ...LAG_TENANTS];
  const tenants = unlimited.map((id) => ({ id, slug: id.replaceAll("_", "-"), planCode: "enterprise" }));
  const limitOverrides = unlimited.map((tenantId) => ({ tenantId, meter: METER, soft: null, hard: null, reason: "benchmark", author: "bench", expiresAt: null }));
  for (let rep = 0; rep < opts.repetitions; rep++) {
    for (let k = 0; k < opts.raceTenants; k++) {
      const id = raceTenant(rep, k);
      tenants.push({ id, slug: id.replaceAll("_", "-"), planCode: "enterprise" });
      limitOverrides.push({ tenantId: id, meter: METER, soft: null, hard: opts.raceLimit, reason: "benchmark", author: "bench", expiresAt: null });
    }
  }
  const revision = applySeed(new RevisionWriter(db, systemClock), createSqliteStores(db), {
    tenants, memberships: tenants.map((t) => ({ tenantId: t.id, actorId: "usr_cbench", role: "owner" })), limitOverrides,
  });
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  const catalog = Object.keys(JSON.parse(readFileSync(join(policyDir, "data.json"), "utf8")).bulkhead.actions);
  const warm = requestMix({ seed: opts.seed, count: 5_000, principals: SHAPE.hotPrincipals, actions: catalog });
  const warmFile = join(work, "warm.json");
  writeFileSync(warmFile, JSON.stringify(warm));
  return { seeded: { ...seeded, revision }, warmFile, probeRequest: warm[0] };
}

function freshDb() {
  const dir = mkdtempSync(join(work, "db-"));
  copyFileSync(join(work, "seed.db"), join(dir, "bench.db"));
  return join(dir, "bench.db");
}

/** A sidecar (unpinned; see pin()); replicated when `nats` is given, on an empty file that restores the imported snapshot. */
async function sidecar({ dbPath, nats }) {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const env = { BULKHEAD_ADMIN_TOKEN: ADMIN_TOKEN, BULKHEAD_POLICY_DIR: policyDir, BULKHEAD_KEY_SECRET: KEY_SECRET };
  if (nats) Object.assign(env, { BULKHEAD_NATS_URL: nats.join(","), BULKHEAD_NATS_STREAM: STREAM, BULKHEAD_NATS_REPLICAS: "3" });
  const server = await startServer({
    command: process.execPath,
    args: [join(dist, "cli", "main.js"), "serve", "--db", dbPath, "--grpc-addr", `127.0.0.1:${grpcPort}`, "--http-addr", `127.0.0.1:${httpPort}`, "--no-watch"],
    cores: null, ready: bulkheadReady(1), env,
  });
  const s = { server, address: `127.0.0.1:${grpcPort}`, http: `http://127.0.0.1:${httpPort}`, pid: server.child.pid };
  await untilReady(s);
  s.decisions = new DecisionServiceClient(s.address, grpc.credentials.createInsecure());
  s.entitlements = new EntitlementServiceClient(s.address, grpc.credentials.createInsecure());
  s.admin = new AdminServiceClient(s.address, grpc.credentials.createInsecure());
  return s;
}

async function closeSidecar(s) {
  s.decisions.close();
  s.entitlements.close();
  s.admin.close();
  await stopServer(s.server);
}

/** /readyz is 200 once a replicated sidecar has caught up with the stream (ADR 64); at once for single-node. */
async function untilReady(s) {
  const giveUp = performance.now() + 180_000;
  for (;;) {
    const status = await fetch(`${s.http}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    if (performance.now() > giveUp) throw new Error(`${s.http}/readyz still ${status} after 180 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const unary = (client, method, request, deadlineMs = 10_000, md = new grpc.Metadata()) =>
  new Promise((resolve, reject) => client[method](request, md, { deadline: Date.now() + deadlineMs }, (error, answer) => (error ? reject(error) : resolve(answer))));
const adminMetadata = () => {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${ADMIN_TOKEN}`);
  md.set("bulkhead-actor", "usr_bench");
  return md;
};
/** PutMembership of ADMIN_WRITE_ACTOR on WRITE_TENANT, role viewer on even `n`, member on odd: every call changes the store. */
const putMembership = (s, n) => unary(s.admin, "putMembership", PutMembershipRequest.fromPartial({
  tenantId: WRITE_TENANT, membership: { actorId: ADMIN_WRITE_ACTOR, role: n % 2 === 0 ? "viewer" : "member" }, reason: "customer_request: cluster bench",
}), 10_000, adminMetadata());
const consume = (s, tenantId, key) => unary(s.entitlements, "consume", ConsumeRequest.fromPartial({ tenantId, meter: METER, amount: 1, idempotencyKey: key }));
const metrics = (s) => fetch(`${s.http}/metrics`).then((r) => r.text());
const sumCpu = (pids) => pids.reduce((n, pid) => n + cpuMs(pid), 0);

/**
 * Pins a running sidecar (all its threads: the evaluation workers too) to
 * `cores`, or back to every core with null. The check and write rows pin the
 * measured sidecar to SERVER_CORE, as decisions.mjs does; the race and lag
 * rows, where three sidecars and NATS share the machine, pin nothing.
 */
function pin(s, cores) {
  if (SERVER_CORE === null) return;
  execFileSync("taskset", ["-a", "-p", "-c", cores ?? `0-${CORES - 1}`, String(s.pid)], { stdio: "ignore" });
}

/** Row 1: warm Check on one sidecar under ghz, as decisions.mjs's check-warm row. `others`: pids whose CPU is reported beside it. */
async function checkRow(target, warmFile, others) {
  const base = { bin: bins.ghz, root, address: target.address, method: "Check", dataFile: warmFile, concurrency: 64, connections: 4, cores: LOAD_CORE };
  await ghz({ ...base, seconds: opts.warmup });
  const probe = await ghz({ ...base, seconds: opts.probe });
  const before = cpuMs(target.pid);
  const othersBefore = sumCpu(others);
  const sustained = await ghz({ ...base, seconds: opts.sustain, rps: probe.rps * 0.85 });
  const serverCpu = cpuMs(target.pid) - before;
  const otherCpu = sumCpu(others) - othersBefore;
  const l = sustained.latencies;
  return {
    decisionsPerS: sustained.rps, probePerS: probe.rps, p50: spread(l).p50, p99: spread(l).p99,
    serverCpuUs: (serverCpu * 1000) / sustained.count, otherCpuUs: (otherCpu * 1000) / sustained.count,
    errors: probe.errors + sustained.errors, calls: sustained.count, peakRssMiB: peakRssMiB(target.pid),
  };
}

/** Row 2: Consume one at a time; the answer is the acknowledgement. */
function writeRow(target, label, others) {
  return timedWrites(target, others, (i) => consume(target, WRITE_TENANT, `${label}-${i}`), (answer) => answer.allowed);
}

/** Row 2b: AdminService PutMembership one at a time, as the Consume row: the answer is the acknowledgement. */
function adminWriteRow(target, others) {
  return timedWrites(target, others, (i) => putMembership(target, i), () => true);
}

/** Writes 0-19 warm up, then opts.writes more one at a time; an error is a failed call, `ok` false, or a revision that did not grow. */
async function timedWrites(target, others, write, ok) {
  for (let i = 0; i < 20; i++) await write(i);
  const latencies = [];
  let errors = 0;
  let last = 0;
  const before = cpuMs(target.pid);
  const othersBefore = sumCpu(others);
  for (let i = 0; i < opts.writes; i++) {
    const start = performance.now();
    try {
      const answer = await write(20 + i);
      if (!ok(answer) || answer.storeRevision <= last) errors++;
      last = answer.storeRevision;
    } catch {
      errors++;
    }
    latencies.push(performance.now() - start);
  }
  const serverCpu = cpuMs(target.pid) - before;
  const otherCpu = sumCpu(others) - othersBefore;
  return { ...spread(latencies), errors, serverCpuUs: (serverCpu * 1000) / opts.writes, otherCpuUs: (otherCpu * 1000) / opts.writes };
}

/** Row 3: 1.5 x limit calls per tenant, round-robin over `targets`, `raceInflight` at a time; then every target's counter. */
async function raceRow(targets, rep, label) {
  const tenants = Array.from({ length: opts.raceTenants }, (_, k) => raceTenant(rep, k));
  const total = Math.round(tenants.length * opts.raceLimit * 1.5);
  const allowed = Object.fromEntries(tenants.map((t) => [t, 0]));
  const latencies = [];
  let errors = 0;
  let denied = 0;
  let maxRevision = 0;
  const conflicts = async () => (await Promise.all(targets.map(async (s) => metricValue(await metrics(s), "bulkhead_replication_conflicts_total") ?? 0))).reduce((a, b) => a + b, 0);
  const conflictsBefore = await conflicts();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const tenant = tenants[i % tenants.length];
      const start = performance.now();
      try {
        const answer = await consume(targets[i % targets.length], tenant, `race-${label}-${rep}-${i}`);
        if (answer.allowed) allowed[tenant]++;
        else denied++;
        maxRevision = Math.max(maxRevision, answer.storeRevision);
      } catch {
        errors++;
      }
      latencies.push(performance.now() - start);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: opts.raceInflight }, worker));
  const wall = (performance.now() - started) / 1000;
  // Every target's counter, read at (at least) the newest revision any answer carried.
  const used = await Promise.all(targets.map(async (s) => {
    const out = {};
    for (const tenantId of tenants) {
      const answer = await unary(s.entitlements, "getEntitlements", GetEntitlementsRequest.fromPartial({ tenantId, minRevision: maxRevision }));
      out[tenantId] = Number(answer.limits.find((l) => l.meter === METER)?.used ?? -1);
    }
    return out;
  }));
  const check = exactness({ allowed, used, limit: opts.raceLimit });
  return { calls: total, callsPerS: total / wall, ...spread(latencies), allowedUnits: Object.values(allowed).reduce((a, b) => a + b, 0), denied, errors, conflicts: (await conflicts()) - conflictsBefore, ...check };
}

/**
 * Row 4: `lagRate` Consumes per second on sidecar 1, round-robin over
 * LAG_TENANTS (open loop: each 5 ms tick issues the writes owed). Every
 * 100 ms all three /metrics are read together: the reader's
 * bulkhead_replication_lag_entries / _seconds, and the sequence lag
 * writer applied - reader applied. Every 10th acknowledged revision is asked
 * of sidecar 2 or 3 with a min_revision Check, beside the same Check without
 * min_revision sent at the same moment (the Check's own latency on that
 * sidecar): the time from the acknowledgement to each answer.
 */
async function lagRow(sidecars, probeRequest) {
  const [writer, ...readers] = sidecars;
  const acks = [];
  const visible = [];
  const baseline = [];
  const samples = readers.map(() => ({ entries: [], seconds: [], low: [], high: [] }));
  let errors = 0;
  let checkErrors = 0;
  let issued = 0;
  const inflight = new Set();
  const track = (p) => {
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  };
  const started = performance.now();
  const end = started + opts.lagSeconds * 1000;
  // Writer, then the readers, then the writer again: a reader's applied
  // sequence was read between the two writer readings, so how far it was
  // behind lies between (first - it) and (second - it).
  const applied = (text) => metricValue(text, "bulkhead_replication_applied_sequence") ?? NaN;
  const sample = async () => {
    const before = applied(await metrics(writer));
    const rs = await Promise.all(readers.map(metrics));
    const after = applied(await metrics(writer));
    rs.forEach((text, i) => {
      samples[i].entries.push(metricValue(text, "bulkhead_replication_lag_entries") ?? NaN);
      samples[i].seconds.push(metricValue(text, "bulkhead_replication_lag_seconds") ?? NaN);
      samples[i].low.push(Math.max(0, before - applied(text)));
      samples[i].high.push(Math.max(0, after - applied(text)));
    });
  };
  const sampler = setInterval(() => track(sample().catch(() => {})), 100);
  const extra = [];
  const timed = async (reader, minRevision) => {
    const t0 = performance.now();
    try {
      await unary(reader.decisions, "check", CheckRequest.fromPartial({ ...probeRequest, minRevision }), 5_000);
      return performance.now() - t0;
    } catch {
      checkErrors++;
      return null;
    }
  };
  const write = (n) => {
    const t0 = performance.now();
    track(consume(writer, LAG_TENANTS[n % LAG_TENANTS.length], `lag-${n}`).then(async (answer) => {
      acks.push(performance.now() - t0);
      if (n % 10 !== 0) return;
      const reader = readers[(n / 10) % readers.length];
      const [waited, plain] = await Promise.all([timed(reader, answer.storeRevision), timed(reader, 0)]);
      if (waited !== null) visible.push(waited);
      if (plain !== null) baseline.push(plain);
      if (waited !== null && plain !== null) extra.push(waited - plain);
    }, () => errors++));
  };
  while (performance.now() < end) {
    const owed = Math.floor(((performance.now() - started) / 1000) * opts.lagRate) - issued;
    for (let i = 0; i < owed; i++) write(issued++);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  clearInterval(sampler);
  while (inflight.size) await Promise.all([...inflight]);
  const wall = (performance.now() - started) / 1000;
  const finite = (list) => spread(list.filter(Number.isFinite));
  return {
    targetRate: opts.lagRate, achievedRate: acks.length / wall, writes: issued, errors, checkErrors,
    ack: spread(acks), visible: spread(visible), baseline: spread(baseline),
    readers: samples.map((s) => ({ entries: finite(s.entries), seconds: finite(s.seconds), low: finite(s.low), high: finite(s.high) })),
    extra: spread(extra),
  };
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

async function main() {
  const { seeded, warmFile, probeRequest } = await prepare();
  progress(`starting 3 nats-server nodes (${bins.nats})`);
  const nats = await startNatsCluster({ binary: bins.nats, dir: join(work, "nats") });
  const sidecars = [];
  try {
    const importStarted = performance.now();
    execFileSync(process.execPath, [join(dist, "cli", "main.js"), "cluster", "import", "--db", freshDb(), "--nats-url", nats.urls().join(","), "--stream", STREAM, "--replicas", "3"], { stdio: ["ignore", "ignore", "inherit"] });
    const importS = (performance.now() - importStarted) / 1000;
    const joinStarted = performance.now();
    for (let i = 0; i < 3; i++) sidecars.push(await sidecar({ dbPath: join(mkdtempSync(join(work, "replica-")), "bulkhead.db"), nats: nats.urls() }));
    const joinS = (performance.now() - joinStarted) / 1000;
    progress(`imported in ${importS.toFixed(1)} s; 3 replicated sidecars restored the snapshot and were ready after ${joinS.toFixed(1)} s`);
    const natsPids = nats.pids();
    const runs = { single: { check: [], write: [], admin: [], race: [] }, replicated: { check: [], write: [], admin: [], race: [] } };
    for (let rep = 0; rep < opts.repetitions; rep++) {
      for (const mode of rep % 2 === 0 ? ["single", "replicated"] : ["replicated", "single"]) {
        const single = mode === "single" ? await sidecar({ dbPath: freshDb() }) : null;
        const target = single ?? sidecars[0];
        try {
          pin(target, SERVER_CORE);
          const others = single ? [] : [...natsPids, sidecars[1].pid, sidecars[2].pid];
          const c = await checkRow(target, warmFile, others);
          runs[mode].check.push(c);
          progress(`check ${mode} ${rep + 1}/${opts.repetitions}: ${Math.round(c.decisionsPerS)} decisions/s, p99 ${f(c.p99)} ms, server CPU ${f(c.serverCpuUs, 1)} us/decision`);
          const w = await writeRow(target, `${mode}-${rep}`, others);
          runs[mode].write.push(w);
          progress(`write ${mode} ${rep + 1}/${opts.repetitions}: p50 ${f(w.p50, 3)} ms, p99 ${f(w.p99, 3)} ms, ${w.errors} errors`);
          const a = await adminWriteRow(target, others);
          runs[mode].admin.push(a);
          progress(`admin write ${mode} ${rep + 1}/${opts.repetitions}: p50 ${f(a.p50, 3)} ms, p99 ${f(a.p99, 3)} ms, ${a.errors} errors`);
          pin(target, null);
          const r = await raceRow(single ? [single] : sidecars, rep, mode);
          runs[mode].race.push(r);
          progress(`race ${mode} ${rep + 1}/${opts.repetitions}: ${Math.round(r.callsPerS)} calls/s, ${r.allowedUnits} allowed, exact ${r.exact}, ${r.conflicts} conflicts`);
        } finally {
          if (single) await closeSidecar(single);
          else pin(target, null);
        }
      }
    }
    progress(`lag: ${opts.lagRate} writes/s on sidecar 1 for ${opts.lagSeconds} s`);
    const lag = await lagRow(sidecars, probeRequest);
    progress(`lag: ${f(lag.achievedRate, 0)} writes/s acknowledged, visible on 2/3 after p50 ${f(lag.visible.p50)} ms, p99 ${f(lag.visible.p99)} ms (Check alone p50 ${f(lag.baseline.p50)} ms)`);
    report({ seeded, runs, lag, importS, joinS });
  } finally {
    for (const s of sidecars) await closeSidecar(s).catch(() => {});
    await nats.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

function report({ seeded, runs, lag, importS, joinS }) {
  const modes = { single: "single-node sidecar", replicated: "replicated sidecar (3 NATS nodes, 3 sidecars)" };
  const m = (list, k) => median(list.map((r) => r[k]));
  const checkRows = Object.entries(modes).map(([mode, row]) => {
    const reps = runs[mode].check;
    return {
      row, "decisions/s": Math.round(m(reps, "decisionsPerS")), "probe/s": Math.round(m(reps, "probePerS")),
      "p50 ms": f(m(reps, "p50"), 3), "p99 ms": f(m(reps, "p99"), 3), "server CPU us/decision": f(m(reps, "serverCpuUs"), 1),
      "NATS + other sidecars CPU us/decision": mode === "single" ? "-" : f(m(reps, "otherCpuUs"), 1),
      errors: reps.reduce((n, r) => n + r.errors, 0), "peak RSS MiB": Math.max(...reps.map((r) => r.peakRssMiB)).toFixed(0),
    };
  });
  const ratio = checkRows[1]["decisions/s"] / checkRows[0]["decisions/s"];
  const cpuRatio = Number(checkRows[1]["server CPU us/decision"]) / Number(checkRows[0]["server CPU us/decision"]);
  const writeRows = ["write", "admin"].flatMap((kind) => Object.keys(modes).map((mode) => {
    const reps = runs[mode][kind];
    const what = kind === "write" ? "Consume" : "PutMembership (AdminService)";
    return {
      row: `${what}, 1 in flight, ${mode === "single" ? "committed to SQLite" : "stored in the stream + applied locally"}`,
      writes: opts.writes * reps.length, "p50 ms": f(m(reps, "p50"), 3), "p99 ms": f(m(reps, "p99"), 3), "max ms": f(Math.max(...reps.map((r) => r.max)), 3),
      "server CPU us/write": f(m(reps, "serverCpuUs"), 1), "NATS + other sidecars CPU us/write": mode === "single" ? "-" : f(m(reps, "otherCpuUs"), 1),
      errors: reps.reduce((n, r) => n + r.errors, 0),
    };
  }));
  const raceRows = Object.entries(modes).map(([mode]) => {
    const reps = runs[mode].race;
    return {
      row: mode === "single" ? "Consume, all on one single-node sidecar" : "Consume, round-robin over 3 replicated sidecars",
      calls: reps.reduce((n, r) => n + r.calls, 0), "calls/s": Math.round(m(reps, "callsPerS")), "p50 ms": f(m(reps, "p50"), 3), "p99 ms": f(m(reps, "p99"), 3),
      "allowed units": reps.reduce((n, r) => n + r.allowedUnits, 0), denied: reps.reduce((n, r) => n + r.denied, 0), errors: reps.reduce((n, r) => n + r.errors, 0),
      "conflicts retried": mode === "single" ? "-" : reps.reduce((n, r) => n + r.conflicts, 0), exact: reps.every((r) => r.exact) ? "yes" : "NO",
    };
  });
  const exactLines = runs.replicated.race.flatMap((r, rep) => r.rows.map((t) => `- repetition ${rep + 1}, ${t.tenant}: allowed ${t.allowed}, counters on sidecars 1/2/3 ${t.counters.join("/")}, limit ${opts.raceLimit}${t.exact ? "" : " (NOT EXACT)"}`));
  const lagRows = lag.readers.map((r, i) => ({
    sidecar: `sidecar ${i + 2}`, samples: r.entries.n,
    "behind sidecar 1, at least p50/p99/max": `${r.low.p50}/${r.low.p99}/${r.low.max}`,
    "at most p50/p99/max": `${r.high.p50}/${r.high.p99}/${r.high.max}`,
    "lag entries p50/p99/max": `${r.entries.p50}/${r.entries.p99}/${r.entries.max}`,
    "lag seconds p50/p99/max": `${f(r.seconds.p50, 3)}/${f(r.seconds.p99, 3)}/${f(r.seconds.max, 3)}`,
  }));
  const machine = machineDetails({
    "nats-server": execFileSync(bins.nats, ["--version"], { encoding: "utf8" }).trim(),
    pinning: SERVER_CORE
      ? `check and write rows: the measured sidecar (single-node, or replicated sidecar 1; all threads) taskset -a -p -c ${SERVER_CORE} for those rows only, ghz taskset -c ${LOAD_CORE}; NATS nodes, replicated sidecars 2 and 3 and the bench's own gRPC client (write, race, lag rows) unpinned; race and lag rows: nothing pinned`
      : "none (one core)",
    store: `${seeded.tenants} tenants, ${seeded.memberships} memberships, ${seeded.plans} plans, plus ${1 + LAG_TENANTS.length + opts.raceTenants * opts.repetitions} metered bench tenants; replicated: \`bulkhead cluster import\` of the same file (${f(importS, 1)} s), 3 sidecars restored it (${f(joinS, 1)} s)`,
    repetitions: opts.repetitions,
    seconds: `check: warm-up ${opts.warmup}, probe ${opts.probe}, sustained ${opts.sustain} at 85% of probe`,
  });
  const goal = ratio >= 0.9;
  const markdown = [
    "# Cluster benchmark (replicated mode, issue 13)",
    "",
    ...Object.entries(machine).map(([k, v]) => `- ${k}: ${v}`),
    "",
    "## Check, warm, one sidecar",
    "",
    table(checkRows, ["row", "decisions/s", "probe/s", "p50 ms", "p99 ms", "server CPU us/decision", "NATS + other sidecars CPU us/decision", "errors", "peak RSS MiB"]),
    "",
    `Replicated / single-node: ${f(ratio)} x the decisions/s (goal >= 0.90: ${goal ? "met" : "not met"}), ${f(cpuRatio)} x the server CPU per decision.`,
    "ghz unary Check, 64 in flight over 4 connections, the warm mix (5,000 requests); sustained run at 85% of the probe; medians of the repetitions,",
    "single-node and replicated interleaved within each repetition (A B, B A, ...). The single-node sidecar is fresh per repetition; replicated sidecar 1 stays up.",
    "",
    "## Write latency: Consume and an admin write, one call at a time",
    "",
    table(writeRows, ["row", "writes", "p50 ms", "p99 ms", "max ms", "server CPU us/write", "NATS + other sidecars CPU us/write", "errors"]),
    "",
    "Latency from the bench's gRPC client: the call's answer is the acknowledgement (replicated: the stream stored the entry and this sidecar applied it).",
    "PutMembership flips one actor of one tenant between viewer and member (bootstrap admin token), so every call is a write; Consume is a keyed command (expected last sequence on its meter), PutMembership an unkeyed one.",
    "",
    "## Consume racing on the same meters",
    "",
    table(raceRows, ["row", "calls", "calls/s", "p50 ms", "p99 ms", "allowed units", "denied", "errors", "conflicts retried", "exact"]),
    "",
    `Per repetition ${opts.raceTenants} tenants, each with a hard limit of ${opts.raceLimit} units, ${Math.round(opts.raceTenants * opts.raceLimit * 1.5)} calls of 1 unit (1.5 x the limits), ${opts.raceInflight} in flight from one client process.`,
    "Exact = on every sidecar the counter (GetEntitlements at the newest revision any answer carried) equals the units answered allowed, and none exceeds the limit.",
    ...exactLines,
    "",
    "## Replication lag under a steady write rate",
    "",
    `Consume on sidecar 1 at ${lag.targetRate}/s for ${opts.lagSeconds} s (open loop): ${f(lag.achievedRate, 0)}/s acknowledged, ${lag.errors} errors, acknowledgement p50 ${f(lag.ack.p50, 3)} ms, p99 ${f(lag.ack.p99, 3)} ms.`,
    ...(lag.achievedRate < 0.95 * lag.targetRate ? [`Sidecar 1 did not keep up with ${lag.targetRate}/s here: acknowledgements queued, so their latency is mostly waiting.`] : []),
    `Every 10th acknowledged revision asked of sidecar 2 or 3 with a min_revision Check: answered after p50 ${f(lag.visible.p50, 3)} ms, p99 ${f(lag.visible.p99, 3)} ms, max ${f(lag.visible.max, 3)} ms;`,
    `the same Check without min_revision, sent at the same moment: p50 ${f(lag.baseline.p50, 3)} ms, p99 ${f(lag.baseline.p99, 3)} ms, max ${f(lag.baseline.max, 3)} ms (${lag.visible.n} + ${lag.baseline.n} Checks, ${lag.checkErrors} failed).`,
    `Pairwise, min_revision minus plain: p50 ${f(lag.extra.p50, 3)} ms, p99 ${f(lag.extra.p99, 3)} ms, max ${f(lag.extra.max, 3)} ms: the wait for the write to be applied there.`,
    "",
    table(lagRows, ["sidecar", "samples", "behind sidecar 1, at least p50/p99/max", "at most p50/p99/max", "lag entries p50/p99/max", "lag seconds p50/p99/max"]),
    "",
    "Sampled every 100 ms from /metrics: behind = sidecar 1's bulkhead_replication_applied_sequence minus this one's, with sidecar 1 read just before (at least) and just after (at most);",
    "lag entries and lag seconds are the sidecar's own bulkhead_replication_lag_entries and _lag_seconds: the stream's last sequence as last read (a stream info once a second, plus deliveries) minus its applied one,",
    "and the age of the oldest entry it has not applied (ADR 64); they can read lower than the sampled lag (by what the stream stored since its last read), never higher.",
  ].join("\n");
  console.log(markdown);
  if (!values["no-write"]) {
    mkdirSync(join(root, "bench", "results"), { recursive: true });
    const stamp = machine.date.slice(0, 10);
    writeFileSync(join(root, "bench", "results", `cluster-${stamp}.md`), markdown + "\n");
    const json = { machine, options: opts, check: { rows: checkRows, ratio, cpuRatio, runs: { single: runs.single.check, replicated: runs.replicated.check } }, write: { rows: writeRows, runs: { single: runs.single.write, replicated: runs.replicated.write }, admin: { single: runs.single.admin, replicated: runs.replicated.admin } }, race: { rows: raceRows, runs: { single: runs.single.race, replicated: runs.replicated.race } }, lag };
    writeFileSync(join(root, "bench", "results", `cluster-${stamp}.json`), JSON.stringify(json, null, 2) + "\n");
    progress(`wrote bench/results/cluster-${stamp}.md and .json`);
  }
}

await main();
