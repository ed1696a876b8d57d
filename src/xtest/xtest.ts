import { readPolicyBundle } from "../engine/policy-bundle.js";
import { generateCases, type XCase } from "./attack-matrix.js";
import { runCases, type RunReport } from "./runner.js";
import { loadSuite, suiteSeeds, type Suite } from "./suite.js";
import { grpcTarget, localTarget, type DecisionTarget } from "./targets.js";

export interface XtestOptions {
  suitePath: string;
  /** Compiled bundle: the policy under test in process, and the action catalog for generation. */
  bundleDir: string;
  /** host:port of a live sidecar; absent = in process. */
  target?: string;
  token?: string;
  progress?: (done: number, total: number) => void;
}

export interface XtestRun {
  suite: Suite;
  cases: XCase[];
  report: RunReport;
}

/** Loads a suite, generates its attack matrix and runs it against the chosen target. */
export async function runXtest(options: XtestOptions): Promise<XtestRun> {
  const suite = loadSuite(options.suitePath);
  const seeds = suiteSeeds(suite);
  const bundle = await readPolicyBundle(options.bundleDir);
  const cases = generateCases(suite, seeds, bundle.data);
  const target: DecisionTarget = options.target
    ? grpcTarget(options.target, options.token)
    : await localTarget(seeds, options.bundleDir);
  try {
    const report = await runCases(cases, target, { progress: options.progress });
    return { suite, cases, report };
  } finally {
    await target.close();
  }
}
