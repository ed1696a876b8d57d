import type { AttackClass, XCase } from "./attack-matrix.js";
import type { DecisionTarget, Outcome } from "./targets.js";

/** leak: an unexpected allow. over_deny: an expected allow that did not happen. wrong_reason: denied, but not for the named reason. */
export type Verdict = "pass" | "leak" | "over_deny" | "wrong_reason";

export interface CaseResult {
  case: XCase;
  outcome: Outcome;
  verdict: Verdict;
}

export interface RunReport {
  target: string;
  results: CaseResult[];
  leaks: CaseResult[];
  failures: CaseResult[];
  byClass: Record<string, { total: number; passed: number; leaks: number; failures: number }>;
}

export function judge(expect: XCase["expect"], outcome: Outcome): Verdict {
  const allowed = "allow" in outcome && outcome.allow;
  if (allowed) return expect.allow ? "pass" : "leak";
  if (expect.allow) return "over_deny";
  if (expect.reason && !("reasons" in outcome && outcome.reasons.includes(expect.reason))) return "wrong_reason";
  return "pass";
}

/** Runs every case with up to `concurrency` in flight; `progress` hears about every 10% done. */
export async function runCases(
  cases: XCase[],
  target: DecisionTarget,
  options: { concurrency?: number; progress?: (done: number, total: number) => void } = {},
): Promise<RunReport> {
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  let done = 0;
  const step = Math.max(1, Math.ceil(cases.length / 10));
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      const outcome = await target.check(cases[i]!.request);
      results[i] = { case: cases[i]!, outcome, verdict: judge(cases[i]!.expect, outcome) };
      if (++done % step === 0 || done === cases.length) options.progress?.(done, cases.length);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 16 }, worker));
  const byClass: RunReport["byClass"] = {};
  for (const r of results) {
    const c = (byClass[r.case.attack as AttackClass] ??= { total: 0, passed: 0, leaks: 0, failures: 0 });
    c.total++;
    if (r.verdict === "pass") c.passed++;
    else if (r.verdict === "leak") c.leaks++;
    else c.failures++;
  }
  return {
    target: target.name,
    results,
    leaks: results.filter((r) => r.verdict === "leak"),
    failures: results.filter((r) => r.verdict === "over_deny" || r.verdict === "wrong_reason"),
    byClass,
  };
}
