// Bulkhead's engine in process: the Decider from createDecisionCore over the
// benchmark database, called directly with validated CheckInputs. There is no
// client library with an in-process transport yet, so this drives the core the
// way such a transport would: no network, no protobuf, same Decider.
//
//   node bench/lib/in-process.mjs run <dist> <db> <policyDir> <requests.json> <warmupS> <probeS> <sustainS>
//     -> JSON on stdout: { probe: {rps}, sustained: {rps, latencies, errors, count, serverCpuMs}, memory, decisionCache }
//   BULKHEAD_DECISION_CACHE_MB=0 turns the decision cache off, as it does for serve.
//   node bench/lib/in-process.mjs precompute <dist> <db> <policyDir> <requests.json> <out.json>
//     -> for each request: the full policy input Bulkhead would evaluate, and
//        Bulkhead's decision (allow + reason codes), for the OPA row and its
//        agreement check.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [mode, dist, dbPath, policyDir, requestsFile, ...rest] = process.argv.slice(2);

async function core() {
  const { openDatabase } = await import(join(dist, "store", "database.js"));
  const { PolicyManager } = await import(join(dist, "engine", "policy-manager.js"));
  const { createDecisionCore } = await import(join(dist, "compose.js"));
  const { systemClock } = await import(join(dist, "clock.js"));
  const { ulidGenerator } = await import(join(dist, "ids.js"));
  const { validateCheck } = await import(join(dist, "decision", "check-input.js"));
  const db = openDatabase(dbPath);
  const policies = new PolicyManager({ dir: policyDir, watch: false });
  await policies.start();
  const runtime = { clock: systemClock, ids: ulidGenerator(systemClock), log: () => {} };
  // BULKHEAD_DECISION_CACHE_MB as serve reads it: 0 turns the decision cache off (the cache-off row).
  const cacheMb = process.env.BULKHEAD_DECISION_CACHE_MB;
  const decisionCore = createDecisionCore(db, policies, runtime, cacheMb === undefined ? {} : { decisionCacheBytes: Number(cacheMb) * 2 ** 20 });
  const inputs = JSON.parse(readFileSync(requestsFile, "utf8")).map((r) => validateCheck(r));
  return { db, policies, decisionCore, inputs };
}

/** Closed loop for `seconds`: decisions/s with nothing else in the way. */
async function closedLoop(decider, inputs, seconds) {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  while (performance.now() < end) {
    for (let k = 0; k < 100; k++) await decider.check(inputs[n++ % inputs.length]);
    // Let timers run, as a serving process does between reads: a decision-cache hit resolves
    // without leaving the microtask queue, so without this the decision log's flush never ran
    // during the probe and a 100,000/s loop left half a million records for the sustained run.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return n / ((performance.now() - started) / 1000);
}

/**
 * Open loop at `rate`/s: every millisecond tick issues the decisions owed so
 * far, each timed on its own, so a slow decision shows up in the tail
 * instead of silently lowering the rate.
 */
async function paced(decider, inputs, seconds, rate) {
  const latencies = [];
  let errors = 0;
  let n = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  while (performance.now() < end) {
    const owed = Math.floor(((performance.now() - started) / 1000) * rate);
    while (n < owed) {
      const t = performance.now();
      try {
        await decider.check(inputs[n % inputs.length]);
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t);
      n++;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  latencies.sort((a, b) => a - b);
  return { rps: n / ((performance.now() - started) / 1000), latencies, errors, count: n };
}

async function runMode() {
  const [warmup, probe, sustain] = rest.map(Number);
  const { decisionCore, inputs, policies } = await core();
  const { decider, decisionLog } = decisionCore;
  const wasmBytes = () => policies.policy.wasmMemoryBytes;
  const memory = { wasmBytesAtStart: wasmBytes() };
  await closedLoop(decider, inputs, warmup);
  memory.wasmBytesAfterWarmup = wasmBytes();
  const rps = await closedLoop(decider, inputs, probe);
  const cpuBefore = process.cpuUsage();
  const sustained = await paced(decider, inputs, sustain, rps * 0.85);
  const cpu = process.cpuUsage(cpuBefore);
  // The process is both the load and the engine: its CPU is the server's.
  sustained.serverCpuMs = (cpu.user + cpu.system) / 1000;
  decisionLog.flush();
  memory.wasmBytesAtEnd = wasmBytes();
  memory.heapUsedMiB = process.memoryUsage().heapUsed / 2 ** 20;
  memory.rssMiB = process.memoryUsage().rss / 2 ** 20;
  const peak = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  // Exit only once stdout has drained: a pipe takes 64 KiB at a time.
  const decisionCache = decisionCore.decisionCache?.usage ?? null;
  const out = JSON.stringify({ probe: { rps }, sustained, memory, decisionCache, peakRssMiB: peak ? Number(peak[1]) / 1024 : 0 });
  await new Promise((resolve) => process.stdout.write(out, resolve));
}

async function precomputeMode() {
  const [outFile] = rest;
  const { buildPolicyInput } = await import(join(dist, "engine", "policy-input.js"));
  const { decisionCore, inputs } = await core();
  const { decider, resolver, tracker } = decisionCore;
  const out = [];
  for (const input of inputs) {
    const decision = await decider.check(input);
    tracker.sync();
    // The same resolution the Decider just used (now cached), as the policy sees it.
    const policyInput = buildPolicyInput(input, resolver.resolve(input.principal));
    out.push({ input: policyInput, allow: decision.allow, reasons: decision.reasons.map((r) => r.code) });
  }
  writeFileSync(outFile, JSON.stringify(out));
}

await (mode === "precompute" ? precomputeMode() : runMode());
process.exit(0);
