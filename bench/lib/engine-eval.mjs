// Bulkhead's policy engine alone, for bench/engine.mjs: the compiled Wasm
// bundle loaded the way serve loads it (PolicySet), evaluating full policy
// inputs precomputed from the request mix. No store, no gRPC, no decision log.
//
//   node bench/lib/engine-eval.mjs <dist> <policyDir> <inputs.json> <msPerInput>
//     -> JSON on stdout: for each input, CPU us per evaluation
//        { direct: on this thread (evaluate), pooled: through one evaluation
//          worker (evaluateBudgeted, serve's path), answers: allow per input }
//
// CPU is process.cpuUsage(), which counts every thread of the process, so the
// pooled figure includes the worker's share and the postMessage hop both ways.
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [dist, policyDir, inputsFile, msArg] = process.argv.slice(2);
const msPerInput = Number(msArg);
const { readPolicyBundle } = await import(join(dist, "engine", "policy-bundle.js"));
const { PolicySet } = await import(join(dist, "engine", "policy-set.js"));
const inputs = JSON.parse(readFileSync(inputsFile, "utf8"));
const bundle = await readPolicyBundle(policyDir);
const direct = await PolicySet.load(bundle);
const pooled = await PolicySet.load(bundle, { evaluation: { workers: 1, budgetMs: 250 } });

/** Evaluations for about `ms` of wall time; CPU us per evaluation over all threads. */
async function measure(evaluate, input) {
  for (let i = 0; i < 200; i++) await evaluate(input);
  let n = 0;
  const cpuBefore = process.cpuUsage();
  const end = performance.now() + msPerInput;
  while (performance.now() < end) {
    for (let k = 0; k < 50; k++) await evaluate(input);
    n += 50;
  }
  const cpu = process.cpuUsage(cpuBefore);
  return (cpu.user + cpu.system) / n;
}

const out = [];
for (const input of inputs) {
  const answer = direct.evaluate(input);
  out.push({
    allow: answer.allow,
    direct: await measure((i) => direct.evaluate(i), input),
    pooled: await measure((i) => pooled.evaluateBudgeted(i), input),
  });
}
await pooled.close();
await new Promise((resolve) => process.stdout.write(JSON.stringify(out), resolve));
process.exit(0);
