// The engine-only pair of issue 19: OPA's own evaluator (`opa bench`, Go,
// topdown) against Bulkhead's in-process evaluation of the compiled Wasm, on
// the same full policy inputs, precomputed from the benchmark's warm request
// mix (so neither side reads a store). A second Bulkhead row goes through one
// evaluation worker, as serve does, to show what the thread hop costs.
//
//   node bench/engine.mjs [--quick] [--inputs N] [--reps N]
//
// Both run pinned to the same core, one after the other, input by input, in
// ABBA order per repetition, so a busy neighbour hits both alike. OPA's
// figure is its ns/op (Go's benchmark loop on one goroutine); Bulkhead's is
// CPU time (all threads) per evaluation.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { machineDetails, table } from "./machine.mjs";
import { requestMix, SHAPE } from "./lib/request-mix.mjs";
import { seedStore } from "./lib/seed-store.mjs";
import { pinning, tool } from "./lib/load-tools.mjs";

const root = join(import.meta.dirname, "..");
const dist = join(root, "dist", "src");
const policyDir = join(root, "dist", "policies");
const run = promisify(execFile);

const HELP = `Usage: node bench/engine.mjs [options]   (npm run bench:engine builds first)

Engine only: OPA's evaluator (opa bench) vs Bulkhead's Wasm evaluation in
process, on the same precomputed inputs from the warm request mix.

  --inputs N   distinct inputs sampled evenly from the mix (default 24; --quick 8)
  --reps N     repetitions, ABBA order (default 2)
  --quick      a short run (about a minute)
  --seed N     request mix seed (default 7)
`;
const { values } = parseArgs({
  options: { quick: { type: "boolean" }, inputs: { type: "string" }, reps: { type: "string" }, seed: { type: "string" }, help: { type: "boolean", short: "h" } },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const opts = {
  inputs: Number(values.inputs ?? (values.quick ? 8 : 24)),
  reps: Number(values.reps ?? 2),
  seed: Number(values.seed ?? 7),
  msPerInput: values.quick ? 300 : 1000,
};
const progress = (message) => process.stderr.write(`bench: ${message}\n`);
const work = mkdtempSync(join(tmpdir(), "bulkhead-engine-"));
const opa = tool(root, "opa");
const pin = pinning((await import("node:os")).cpus().length >= 2 ? "0" : null);

async function prepareInputs() {
  progress(`seeding ${SHAPE.tenants} tenants and precomputing policy inputs in ${work}`);
  const dbPath = join(work, "seed.db");
  await seedStore(dist, dbPath, opts.seed);
  const catalog = Object.keys(JSON.parse(readFileSync(join(policyDir, "data.json"), "utf8")).bulkhead.actions);
  const mixFile = join(work, "warm.json");
  writeFileSync(mixFile, JSON.stringify(requestMix({ seed: opts.seed, count: 2_000, principals: SHAPE.hotPrincipals, actions: catalog })));
  const expectedFile = join(work, "expected.json");
  await run(process.execPath, [join(root, "bench", "lib", "in-process.mjs"), "precompute", dist, dbPath, policyDir, mixFile, expectedFile], { maxBuffer: 1 << 28 });
  const all = JSON.parse(readFileSync(expectedFile, "utf8"));
  const step = Math.max(1, Math.floor(all.length / opts.inputs));
  return all.filter((_, i) => i % step === 0).slice(0, opts.inputs);
}

/** OPA's ns/op for one input, as `opa bench` measures it; also its answer, for the agreement count. */
async function opaBench(input, i) {
  const file = join(work, `input-${i}.json`);
  writeFileSync(file, JSON.stringify(input));
  const args = ["bench", "--format", "json", "--benchmem=false", "--metrics=false", "--ignore", "*_test.rego",
    "--data", join(root, "policies"), "--input", file, "data.bulkhead.decision"];
  const argv = [...pin, opa, ...args];
  const { stdout } = await run(argv[0], argv.slice(1), { maxBuffer: 1 << 24 });
  const result = JSON.parse(stdout);
  // Go testing.BenchmarkResult: T nanoseconds over N operations.
  return result.T / result.N / 1000;
}

async function opaAnswers(inputs) {
  const answers = [];
  for (const [i, sample] of inputs.entries()) {
    const file = join(work, `answer-${i}.json`);
    writeFileSync(file, JSON.stringify(sample.input));
    const { stdout } = await run(opa, ["eval", "--format", "json", "--ignore", "*_test.rego", "--data", join(root, "policies"), "--input", file, "data.bulkhead.decision"]);
    answers.push(JSON.parse(stdout).result[0].expressions[0].value.allow);
  }
  return answers;
}

async function bulkheadEval(inputs) {
  const file = join(work, "inputs.json");
  writeFileSync(file, JSON.stringify(inputs.map((s) => s.input)));
  const argv = [...pin, process.execPath, join(root, "bench", "lib", "engine-eval.mjs"), dist, policyDir, file, String(opts.msPerInput)];
  const { stdout } = await run(argv[0], argv.slice(1), { maxBuffer: 1 << 24 });
  return JSON.parse(stdout);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

const inputs = await prepareInputs();
progress(`${inputs.length} inputs, ${inputs.filter((s) => s.allow).length} allowed; checking OPA agrees with Bulkhead on each`);
const opaAllow = await opaAnswers(inputs);
const disagreements = opaAllow.filter((allow, i) => allow !== inputs[i].allow).length;
const per = { opa: [], direct: [], pooled: [] };
for (let rep = 0; rep < opts.reps; rep++) {
  const order = rep % 2 === 0 ? ["opa", "bulkhead"] : ["bulkhead", "opa"];
  for (const system of order) {
    progress(`repetition ${rep + 1}/${opts.reps}: ${system}`);
    if (system === "opa") {
      const us = [];
      for (const [i, sample] of inputs.entries()) us.push(await opaBench(sample.input, i));
      per.opa.push(us);
    } else {
      const result = await bulkheadEval(inputs);
      per.direct.push(result.map((r) => r.direct));
      per.pooled.push(result.map((r) => r.pooled));
    }
  }
}
// Per input, the median over repetitions; then the mean over inputs (the mix's average decision).
const perInput = (reps) => inputs.map((_, i) => median(reps.map((r) => r[i])));
const figures = { opa: perInput(per.opa), direct: perInput(per.direct), pooled: perInput(per.pooled) };
const opaMean = mean(figures.opa);
const row = (name, xs) => ({
  row: name,
  "us/decision (mean)": mean(xs).toFixed(1),
  "us/decision (median input)": median(xs).toFixed(1),
  "max input": Math.max(...xs).toFixed(1),
  "OPA / this": (opaMean / mean(xs)).toFixed(2),
});
const rows = [
  row("OPA `opa bench` (Go topdown, ns/op)", figures.opa),
  row("Bulkhead Wasm on this thread (CPU)", figures.direct),
  row("Bulkhead Wasm via 1 evaluation worker (CPU, all threads)", figures.pooled),
];
const opaVersion = (await run(opa, ["version"])).stdout.match(/^Version: (.*)$/m)?.[1] ?? "?";
const machine = machineDetails({ opa: opaVersion, pinned: pin.length > 0 ? "core 0" : "no" });
console.log(table(Object.entries(machine).map(([k, v]) => ({ machine: k, value: v })), ["machine", "value"]));
console.log();
console.log(table(rows, ["row", "us/decision (mean)", "us/decision (median input)", "max input", "OPA / this"]));
console.log();
console.log(`${inputs.length} inputs from the warm mix (seed ${opts.seed}), ${opts.reps} repetitions (ABBA); OPA vs Bulkhead disagreements: ${disagreements}.`);
console.log(`The worker row minus the thread row is the cost of serve's evaluation hop (postMessage both ways, the worker's wake-up).`);
console.log(`Command: node bench/engine.mjs ${process.argv.slice(2).join(" ")}`.trimEnd());
if (disagreements > 0) process.exitCode = 1;
