// The load generators and the processes under test: starting a server pinned
// to a core, reading its peak RSS, and running ghz (gRPC) or vegeta (HTTP)
// against it. Every run returns the same shape:
//   { rps, latencies (ms, sorted), errors, count, loadCpuMs (the load tool's CPU), argv (what ran) }
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

/** A loopback port that was free a moment ago (bound to 0, then closed). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** `taskset -c <cores>` when taskset exists and there are cores to pin to, else nothing. */
export function pinning(cores) {
  if (!cores) return [];
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
    return ["taskset", "-c", cores];
  } catch {
    return [];
  }
}

export function tool(root, name) {
  return execFileSync("bash", [join(root, "scripts", "ensure-tool.sh"), name], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

// The ready line's one parser (src/cli/ready-line.ts); the benches run after `npm run build`.
const { readyAddresses } = await import(join(import.meta.dirname, "..", "..", "dist", "src", "cli", "ready-line.js"));

/** A `ready` for startServer: `processes` Bulkhead processes (`--workers N`: N) have printed their ready line. */
export const bulkheadReady = (processes = 1) => (stderr) => readyAddresses(stderr).length >= processes;

/**
 * Starts `command` (pinned), resolves once its stderr so far satisfies
 * `ready` (a RegExp, or a test such as bulkheadReady()); `ready: null`
 * resolves once the process has spawned (the caller polls it, e.g. waitForHttp).
 * The process's stderr is kept (last 64 KiB) for error messages.
 */
export function startServer({ command, args, cores, ready, env, cwd }) {
  const isReady = ready === null ? () => true : typeof ready === "function" ? ready : (log) => ready.test(log);
  const pin = pinning(cores);
  const argv = [...pin, command, ...args];
  const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env }, cwd });
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not become ready in 60s:\n${log}`)), 60_000);
    child.stderr.on("data", (d) => {
      log = (log + d).slice(-65536);
      if (isReady(log)) {
        clearTimeout(timer);
        resolve({ child, log: () => log, argv });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited with ${code} before it was ready:\n${log}`));
    });
    if (ready === null) {
      child.once("spawn", () => {
        clearTimeout(timer);
        resolve({ child, log: () => log });
      });
    }
  });
}

/** Polls `url` until it answers 2xx (10 s at most). */
export async function waitForHttp(url) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never answered`);
}

export async function stopServer(server) {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGTERM");
  const timer = setTimeout(() => server.child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Peak resident set (VmHWM, MiB) of a process plus all its descendants (cluster workers). */
export function peakRssMiB(pid) {
  let kib = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) kib += Number(m[1]);
    } catch {
      // gone already
    }
  }
  return kib / 1024;
}

/** Current resident set (VmRSS, MiB) of a process and its descendants. */
export function rssMiB(pid) {
  let kib = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) kib += Number(m[1]);
    } catch {}
  }
  return kib / 1024;
}

const TICKS = 100; // USER_HZ on Linux

/**
 * CPU time (user + system, ms) a process and its live descendants (cluster
 * workers) have used so far, from /proc/<pid>/stat. Per-decision CPU is a
 * difference of two readings, which a busy neighbour on the machine cannot
 * inflate the way it inflates wall-clock throughput.
 */
export function cpuMs(pid) {
  let ticks = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1].split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone already
    }
  }
  return (ticks * 1000) / TICKS;
}

function descendants(pid) {
  const out = [];
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return out;
  for (const task of readdirSync(dir)) {
    try {
      for (const child of readFileSync(`${dir}/${task}/children`, "utf8").trim().split(/\s+/).filter(Boolean)) {
        out.push(Number(child), ...descendants(Number(child)));
      }
    } catch {}
  }
  return out;
}

/**
 * Runs argv to completion; resolves with its stdout and, when `timed`, the CPU
 * time it used (bash's `times` after it exits: a finished child's CPU is
 * gone from /proc, and node reports no child rusage).
 */
function run(argv, { input, timed = false } = {}) {
  const wrapped = timed ? ["bash", "-c", '"$@"; s=$?; times >&2; exit $s', "bash", ...argv] : argv;
  return new Promise((resolve, reject) => {
    const child = spawn(wrapped[0], wrapped.slice(1), { stdio: [input ? "pipe" : "ignore", "pipe", "pipe"] });
    const out = [];
    let err = "";
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => (err = (err + d).slice(-8192)));
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`${argv.join(" ")} exited ${code}: ${err}`));
      const stdout = Buffer.concat(out);
      if (!timed) return resolve(stdout);
      // `times` prints the shell's own line, then its children's: "0m1.230s 0m0.410s".
      const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(err);
      const cpu = m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : Number.NaN;
      resolve({ stdout, cpuMs: cpu });
    });
    if (input) child.stdin.end(input);
  });
}

/**
 * ghz against a gRPC method: `method` of Bulkhead's DecisionService (from
 * proto/), or any `call` ("pkg.Service.Method") that the server describes
 * through gRPC reflection. `rps` 0 = as fast as it goes (the probe).
 * Latencies come from ghz's per-call details, so p99.9 is computed here.
 */
export async function ghz({ bin, root, address, method, call, dataFile, seconds, rps = 0, concurrency, connections, cores, streamCount }) {
  const service = call
    ? ["--call", call] // no --proto: ghz asks the server's reflection service
    : ["--proto", join(root, "proto", "bulkhead", "v1", "decision.proto"), "-i", join(root, "proto"), "--call", `bulkhead.v1.DecisionService.${method}`];
  const argv = [
    ...pinning(cores), bin, "--insecure",
    ...service, "-D", dataFile,
    "-c", String(concurrency), "--connections", String(connections), "--cpus", "1",
    "-z", `${seconds}s`, "--duration-stop", "wait", "-O", "json",
    ...(rps > 0 ? ["--rps", String(Math.round(rps))] : []),
    ...(streamCount ? ["--stream-call-count", String(streamCount)] : []),
    address,
  ];
  const { stdout, cpuMs: loadCpuMs } = await run(argv, { timed: true });
  const report = JSON.parse(stdout.toString("utf8"));
  const details = report.details ?? [];
  const latencies = details.map((d) => d.latency / 1e6).sort((a, b) => a - b);
  const errors = details.filter((d) => d.error || d.status !== "OK").length;
  return { rps: report.rps, latencies, errors, count: report.count, loadCpuMs, argv };
}

/** vegeta against an HTTP endpoint with per-request bodies from a JSON targets file. */
export async function vegeta({ bin, targetsFile, seconds, rps = 0, workers, cores }) {
  const rate = rps > 0 ? ["-rate", `${Math.round(rps)}/s`, "-workers", String(workers)] : ["-rate", "0", "-max-workers", String(workers)];
  const attack = [...pinning(cores), bin, "attack", "-format", "json", "-targets", targetsFile, "-duration", `${seconds}s`, "-keepalive", ...rate];
  const { stdout: results, cpuMs: loadCpuMs } = await run(attack, { timed: true });
  const lines = (await run([bin, "encode", "--to", "json"], { input: results })).toString("utf8").split("\n").filter(Boolean);
  const latencies = [];
  let errors = 0;
  let first = Infinity;
  let last = 0;
  for (const line of lines) {
    const r = JSON.parse(line);
    latencies.push(r.latency / 1e6);
    if (r.code !== 200 || r.error) errors++;
    const at = Date.parse(r.timestamp);
    first = Math.min(first, at);
    last = Math.max(last, at + r.latency / 1e6);
  }
  latencies.sort((a, b) => a - b);
  const wall = Math.max((last - first) / 1000, 1e-3);
  return { rps: lines.length / wall, latencies, errors, count: lines.length, loadCpuMs, argv: attack };
}
