// The fixed-rate rows of `npm run bench` (issue 19): every system in the set
// is loaded at one request rate R for the same sustained duration, so their
// latencies compare like for like (the ordinary rows run each system at 85%
// of its own probe, so a faster system is also a busier one).
//
// R is --fixed-rate (default 1,000/s), lowered before the repetitions when a
// probe pass finds a system that could not hold it with headroom: a latency
// measured past capacity is queueing, not the system. Each fixed-rate row is
// its ordinary row's plan called with { rate }, interleaved with the other
// rows by decisions.mjs; the plan still probes in its own repetition, so the
// table shows R against the capacity measured right before the run.
//
// A plan in decisions.mjs is `(run = {}) => repetition`, where run is
// { rate } (sustain at that many calls/s instead of 85% of the probe) or
// { probeOnly: true } (warm-up and probe, then stop). Adding a peer to the
// fixed-rate set is its row id in FIXED_RATE_PEERS.
import { readFileSync } from "node:fs";
import { basename, isAbsolute, relative } from "node:path";
import { createRequire } from "node:module";
import { median } from "../machine.mjs";

/** Rows that also run at the fixed rate, as `fixed-<id>`: one line per peer. */
export const FIXED_RATE_PEERS = [
  "b0",
  "check-warm",
  "check-warm-unique",
  "opa",
  "cerbos",
];

export const DEFAULT_FIXED_RATE = 1000;
/** R stays at or below this share of the lowest probed capacity. */
export const HEADROOM = 0.7;

export const fixedId = (id) => `fixed-${id}`;
export const isFixedRow = (id) => id.startsWith("fixed-");

/** `fixed-<id>` labels for ROWS, from the ordinary rows' labels. */
export function fixedRateRows(rows, peers = FIXED_RATE_PEERS) {
  return Object.fromEntries(peers.filter((id) => rows[id]).map((id) => [fixedId(id), `${rows[id]}, at the fixed rate`]));
}

/** Rows a selection needs planned: the selected ones plus the ordinary row behind each fixed-rate one. */
export function plannedRows(selected) {
  return [...new Set(selected.flatMap((id) => (isFixedRow(id) ? [id, id.slice("fixed-".length)] : [id])))];
}

/**
 * The one rate for every peer: `requested`, unless that is above `headroom`
 * x the lowest probed capacity (calls/s by peer), then that ceiling rounded
 * down to two significant figures. Throws rather than return a rate below
 * 1/s, because 0 means "unlimited" to ghz and vegeta.
 */
export function chooseFixedRate(requested, capacities, headroom = HEADROOM) {
  if (!(Number.isFinite(requested) && requested >= 1)) throw new Error(`--fixed-rate must be a rate of at least 1/s, not ${requested}`);
  const probes = Object.entries(capacities);
  if (probes.length === 0) throw new Error("no probed capacities to choose a fixed rate below");
  const [slowest, lowest] = probes.reduce((a, b) => (b[1] < a[1] || !Number.isFinite(b[1]) ? b : a));
  const ceiling = roundDown2(lowest * headroom);
  if (!(ceiling >= 1)) throw new Error(`no fixed rate fits: ${slowest} probed ${lowest} calls/s`);
  if (requested <= ceiling) return { rate: requested, requested, lowered: false, slowest, lowest };
  return { rate: ceiling, requested, lowered: true, slowest, lowest };
}

function roundDown2(x) {
  if (!(x > 0) || !Number.isFinite(x)) return 0;
  const unit = 10 ** Math.max(0, Math.floor(Math.log10(x)) - 1);
  return Math.floor(x / unit) * unit;
}

/**
 * Probes every peer once (warm-up, probe, no sustained run), in order,
 * and picks R. `plans` are decisions.mjs's; `peers` the ordinary row ids.
 */
export async function probeAndChoose({ peers, plans, requested, progress }) {
  const capacities = {};
  for (const id of peers) {
    const probe = await plans[id]({ probeOnly: true });
    capacities[id] = probe.probeCallsPerS;
    progress(`fixed rate: ${id} probed ${Math.round(capacities[id])} calls/s`);
  }
  const choice = chooseFixedRate(requested, capacities);
  progress(`fixed rate: ${choice.rate}/s for ${peers.join(", ")}${choice.lowered ? ` (lowered from ${requested}/s: ${choice.slowest} probed ${Math.round(choice.lowest)}/s)` : ""}`);
  return { ...choice, capacities };
}

/**
 * Plans for the selected `fixed-*` rows: the ordinary plan at the chosen
 * rate; each also notes the peer's commands and request body size once.
 */
export function fixedRatePlans({ ids, plans, rate, peerInfo, root }) {
  const out = {};
  for (const id of ids.filter(isFixedRow)) {
    const of = id.slice("fixed-".length);
    out[id] = async () => {
      const r = await plans[of]({ rate });
      peerInfo[id] ??= { server: describeCommand(r.commands?.server, root), load: describeCommand(r.commands?.load, root), body: bodyBytes(r.commands?.load) };
      return r;
    };
  }
  return out;
}

/**
 * A command line for the notes: paths inside the repository relative to it,
 * other paths (temporary files, the binaries) as their base names.
 */
export function describeCommand(argv, root = "/nonexistent") {
  if (!argv) return "-";
  const path = (a) => {
    const inRepo = relative(root, a);
    return inRepo && !inRepo.startsWith("..") && !isAbsolute(inRepo) ? inRepo : basename(a);
  };
  return argv.map((a, i) => (i === 0 || a.startsWith("/") ? path(a) : a)).join(" ");
}

const flag = (argv, name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};

/**
 * Request body bytes (mean, min, max) a load command sends: for ghz, each
 * request of its -D file encoded as the method's protobuf request message
 * (the proto and include dir from its own argv; gRPC's 5-byte frame header
 * and HTTP/2 headers extra); for vegeta, each target's JSON body (HTTP/1.1
 * headers extra).
 */
export function bodyBytes(argv) {
  if (!argv) return null;
  if (argv.includes("attack")) {
    const targets = readFileSync(flag(argv, "-targets"), "utf8").split("\n").filter(Boolean);
    return { kind: "JSON body", ...stats(targets.map((t) => Buffer.from(JSON.parse(t).body, "base64").length)) };
  }
  // A ghz that takes its messages by server reflection (Cerbos) has no proto file here: its row notes its own body size.
  if (!flag(argv, "--proto")) return null;
  const data = JSON.parse(readFileSync(flag(argv, "-D"), "utf8"));
  const requests = Array.isArray(data) ? data : [data];
  const encode = protobufEncoder(flag(argv, "--proto"), flag(argv, "-i"), flag(argv, "--call"));
  return { kind: "protobuf message", ...stats(requests.map((r) => encode(r).length)) };
}

/** proto-loader's serializer for `pkg.Service.Method`'s request message. */
function protobufEncoder(protoFile, includeDir, call) {
  const require = createRequire(import.meta.url);
  const loader = require("@grpc/proto-loader");
  const definition = loader.loadSync(protoFile, { includeDirs: includeDir ? [includeDir] : [] });
  const dot = call.lastIndexOf(".");
  const method = definition[call.slice(0, dot)]?.[call.slice(dot + 1)];
  if (!method) throw new Error(`${call} is not in ${protoFile}`);
  return (request) => method.requestSerialize(request);
}

export function stats(values) {
  if (values.length === 0) return { mean: 0, min: 0, max: 0, count: 0 };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  return { mean: sum / values.length, min, max, count: values.length };
}

export const FIXED_COLUMNS = ["row", "rate /s", "achieved /s", "probe /s", "rate / probe", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms",
  "server CPU us/decision", "load CPU us/decision", "errors"];

/** One table row per fixed-rate row: medians over its repetitions. */
export function summariseFixed(id, label, reps, rate) {
  const m = (k) => median(reps.map((r) => r[k]));
  return {
    id,
    row: label,
    "rate /s": rate,
    "achieved /s": Math.round(m("callsPerS")),
    "probe /s": Math.round(m("probeCallsPerS")),
    "rate / probe": (rate / m("probeCallsPerS")).toFixed(2),
    "p50 ms": m("p50").toFixed(3),
    "p90 ms": m("p90").toFixed(3),
    "p99 ms": m("p99").toFixed(3),
    "p99.9 ms": m("p999").toFixed(3),
    "server CPU us/decision": m("serverCpuUsPerDecision").toFixed(1),
    "load CPU us/decision": reps.some((r) => r.loadCpuUsPerDecision === null) ? "-" : m("loadCpuUsPerDecision").toFixed(1),
    errors: reps.reduce((n, r) => n + r.errors, 0),
    reps,
  };
}

/** The notes under the fixed-rate table: how R was chosen, then each peer's commands and body size. */
export function fixedRateNotes({ choice, rows, peerInfo, seconds }) {
  const lines = [
    `One rate for every row: ${choice.rate} calls/s for ${seconds} s per repetition` +
      (choice.lowered
        ? ` (requested ${choice.requested}/s; lowered to ${HEADROOM * 100}% of the lowest capacity in the probe pass, ${choice.slowest} at ${Math.round(choice.lowest)}/s).`
        : ` (requested; at most ${HEADROOM * 100}% of every capacity in the probe pass, the lowest ${choice.slowest} at ${Math.round(choice.lowest)}/s).`),
    "probe /s is the same repetition's unlimited probe just before the fixed-rate run; rate / probe is how loaded each system was at that rate.",
    "Latencies are per call from the load tool; CPU columns as in the table above.",
  ];
  for (const r of rows) {
    if (r["achieved /s"] < 0.95 * choice.rate) lines.push(`${r.row}: achieved ${r["achieved /s"]}/s, below the rate: that system did not keep up, its latencies include queueing.`);
  }
  lines.push("", "| row | server | load | request body bytes (mean, min-max) |", "| --- | --- | --- | --- |");
  for (const r of rows) {
    const info = peerInfo[r.id] ?? {};
    const body = info.body ? `${info.body.mean.toFixed(0)} (${info.body.min}-${info.body.max}), ${info.body.kind}, over the ${info.body.count} requests of its file` : "-";
    lines.push(`| ${r.row} | \`${info.server ?? "-"}\` | \`${info.load ?? "-"}\` | ${body} |`);
  }
  return lines;
}
