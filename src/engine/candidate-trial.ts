import type { Evaluation } from "./evaluation-pool.js";
import type { PolicySet } from "./policy-set.js";
import { smokeCases, smokeFailure } from "./smoke-cases.js";

/**
 * What a candidate bundle must get through before it may serve, run in the
 * candidate's own workers so that nothing it does holds the serving thread:
 * the smoke cases (each must deny with its reason) and a replay of recent
 * real inputs (each must answer: no trap, no exhausted heap, none past the
 * per-evaluation budget; what it answers may differ, that is what a new
 * policy is for). The whole trial also has a total budget.
 *
 * Throws an Error that says which input failed and how; the caller keeps
 * the old bundle serving.
 */
export async function trialCandidate(candidate: PolicySet, recent: readonly string[], totalBudgetMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const overall = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`trial ran past its total budget of ${totalBudgetMs} ms (smoke cases and ${recent.length} recent inputs)`)),
      totalBudgetMs,
    );
  });
  try {
    await Promise.race([runTrial(candidate, recent), overall]);
  } finally {
    clearTimeout(timer);
  }
}

async function runTrial(candidate: PolicySet, recent: readonly string[]): Promise<void> {
  for (const smoke of smokeCases(candidate.data)) {
    const evaluation = await candidate.trial(JSON.stringify(smoke.input));
    const failure = refusal(`smoke case "${smoke.name}"`, evaluation, candidate.budgetMs) ??
      smokeFailure(smoke, candidate.toDecision(evaluation, smoke.input));
    if (failure) throw new Error(failure);
  }
  // All at once: the pool queues them, so the candidate's workers are all busy.
  const replays = await Promise.all(recent.map((json) => candidate.trial(json)));
  replays.forEach((evaluation, i) => {
    const failure = refusal(`replaying recent input ${i + 1} of ${recent.length}`, evaluation, candidate.budgetMs);
    if (failure) throw new Error(failure);
  });
}

/** Why an evaluation refuses the candidate, naming the fault: trap, memory or budget. */
function refusal(what: string, evaluation: Evaluation, budgetMs: number | undefined): string | undefined {
  switch (evaluation.kind) {
    case "result":
      return undefined;
    case "trap":
      return `${what} trapped: ${evaluation.message}`;
    case "memory":
      return `${what} exhausted the Wasm memory: ${evaluation.message}`;
    case "budget":
      return `${what} ran past the evaluation budget of ${budgetMs} ms`;
  }
}
