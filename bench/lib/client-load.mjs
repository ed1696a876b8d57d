// The host-client rows' load process: bulkhead/client as a host uses it, in a
// process of its own (pinned apart from the sidecar). Modes run interleaved
// round by round, in a rotating order, so a busy neighbour slows all alike.
//   coalesced: 100 concurrent isAllowed through one coalescing client (few BatchChecks)
//   unary:     the same 100 through a client with coalesce: false (100 Checks)
//   inproc:    isAllowed one at a time through the in-process transport (bulkhead/embedded)
// Answers are fetched with check() (what isAllowed runs) so a failed call is
// counted as an error, not hidden as a deny.
// Prints one JSON object: per mode, per-decision latencies, wall time, CPU of
// this process and of the sidecar (/proc/<pid>/stat), RPCs sent.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { percentile } from "../machine.mjs";
import { cpuMs } from "./load-tools.mjs";

const [dist, address, serverPid, embeddedDb, policyDir, requestsFile, roundsArg, burstsArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
const bursts = Number(burstsArg);
const CONCURRENT = 100;
const { BulkheadClient } = await import(join(dist, "client", "index.js"));
const { createEmbeddedTransport } = await import(join(dist, "embedded", "index.js"));
const { InterceptingCall } = await import("@grpc/grpc-js");

const requests = JSON.parse(readFileSync(requestsFile, "utf8"));
let rpcs = 0;
const counter = (options, next) => new InterceptingCall(next(options), { sendMessage: (m, forward) => { rpcs++; forward(m); } });
const clients = {
  coalesced: new BulkheadClient({ address, deadlineMs: 10_000, interceptors: [counter] }),
  unary: new BulkheadClient({ address, deadlineMs: 10_000, coalesce: false, interceptors: [counter] }),
  inproc: new BulkheadClient({ transport: await createEmbeddedTransport({ dbPath: embeddedDb, policyDir, log: () => {} }), deadlineMs: 10_000 }),
};
const serverCpuMs = () => cpuMs(serverPid);
const stats = Object.fromEntries(Object.keys(clients).map((m) => [m, { latencies: [], wallMs: 0, cpuMs: 0, serverCpuMs: 0, rpcs: 0, decisions: 0, denied: 0, errors: 0 }]));
/** check() is what isAllowed runs; it also tells a deny from a failed call, which must stay 0. */
const tally = (s, answer) => {
  if (answer.reasons.some((r) => r.code === "unavailable")) s.errors++;
  else if (!answer.allow) s.denied++;
};
let cursor = 0;
const next = () => requests[cursor++ % requests.length];

/** 100 concurrent isAllowed; each decision's latency runs from the burst's start to its own answer. */
async function burst(client, s) {
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENT }, async () => {
    tally(s, await client.check(next()));
    s.latencies.push(performance.now() - started);
  }));
  return performance.now() - started;
}

/** One isAllowed at a time: the in-process transport's per-decision cost. */
async function sequential(client, s) {
  const started = performance.now();
  for (let i = 0; i < CONCURRENT; i++) {
    const t = performance.now();
    tally(s, await client.check(next()));
    s.latencies.push(performance.now() - t);
  }
  return performance.now() - started;
}

async function run(mode, record) {
  const s = record ? stats[mode] : structuredClone(stats[mode]);
  const cpu = process.cpuUsage();
  const server = serverCpuMs();
  const rpcsBefore = rpcs;
  for (let b = 0; b < bursts; b++) s.wallMs += await (mode === "inproc" ? sequential : burst)(clients[mode], s);
  const used = process.cpuUsage(cpu);
  s.cpuMs += (used.user + used.system) / 1000;
  s.serverCpuMs += mode === "inproc" ? 0 : serverCpuMs() - server;
  s.rpcs += rpcs - rpcsBefore;
  s.decisions += bursts * CONCURRENT;
}

const modes = Object.keys(clients);
for (const mode of modes) await run(mode, false); // warm-up: contexts cached, channels open, JIT warm
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < modes.length; i++) await run(modes[(r + i) % modes.length], true);
}
for (const client of Object.values(clients)) await client.close();

const out = {};
for (const [mode, s] of Object.entries(stats)) {
  const sorted = s.latencies.sort((a, b) => a - b);
  out[mode] = {
    decisions: s.decisions,
    decisionsPerS: (s.decisions / s.wallMs) * 1000,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    clientCpuMsPerDecision: s.cpuMs / s.decisions,
    serverCpuMsPerDecision: mode === "inproc" ? null : s.serverCpuMs / s.decisions,
    rpcsPer100: (s.rpcs / s.decisions) * 100,
    deniedShare: s.denied / s.decisions,
    errors: s.errors,
  };
}
console.log(JSON.stringify(out));
