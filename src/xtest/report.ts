import type { CaseResult, RunReport } from "./runner.js";
import type { Outcome } from "./targets.js";

export const describeOutcome = (o: Outcome): string =>
  "error" in o ? `error ${o.error}` : o.allow ? "allow" : `deny [${o.reasons.join(", ")}]`;

const describeExpect = (r: CaseResult): string =>
  r.case.expect.allow ? "allow" : `deny${r.case.expect.reason ? ` with ${r.case.expect.reason}` : ""}`;

/** API-key cases whose seeded, valid key was refused as invalid (or errored) on the target. */
export function unverifiedKeyCases(report: RunReport): number {
  return report.failures.filter(
    (f) => f.case.attack.startsWith("api_key_") && !("reasons" in f.outcome && !f.outcome.reasons.includes("api_key_invalid")),
  ).length;
}

/** The human summary: counts by attack class, then every leak and failure. */
export function summaryText(suiteName: string, report: RunReport): string {
  const lines = [`xtest: suite "${suiteName}" against ${report.target}`, ""];
  const width = Math.max(...Object.keys(report.byClass).map((k) => k.length), 12);
  lines.push(`  ${"attack class".padEnd(width)}  cases  passed  leaks  failures`);
  for (const [name, c] of Object.entries(report.byClass).sort()) {
    lines.push(`  ${name.padEnd(width)}  ${String(c.total).padStart(5)}  ${String(c.passed).padStart(6)}  ${String(c.leaks).padStart(5)}  ${String(c.failures).padStart(8)}`);
  }
  lines.push("");
  for (const leak of report.leaks) lines.push(`LEAK ${leak.case.id}: expected ${describeExpect(leak)}, got ${describeOutcome(leak.outcome)}`);
  for (const f of report.failures) lines.push(`FAIL ${f.case.id}: expected ${describeExpect(f)}, got ${describeOutcome(f.outcome)}`);
  const unverified = unverifiedKeyCases(report);
  if (unverified > 0) {
    lines.push(
      `xtest: ${unverified} API-key cases were denied api_key_invalid or failed: the suite's keys do not verify on this target ` +
        "(was it seeded with `bulkhead xtest seed` under the same BULKHEAD_KEY_SECRET?); those cases prove nothing about tenant or scope checks",
    );
  }
  lines.push(
    `${report.results.length} cases: ${report.results.length - report.leaks.length - report.failures.length} passed, ` +
      `${report.leaks.length} leaks, ${report.failures.length} failures`,
  );
  return lines.join("\n");
}

const xml = (s: string) => s.replace(/[<>&"']/g, (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "apos" }[c]};`);

/** JUnit XML: one testsuite per attack class, one testcase per generated case. */
export function junitXml(suiteName: string, report: RunReport): string {
  const classes = new Map<string, CaseResult[]>();
  for (const r of report.results) classes.set(r.case.attack, [...(classes.get(r.case.attack) ?? []), r]);
  const failed = report.leaks.length + report.failures.length;
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="${xml(suiteName)}" tests="${report.results.length}" failures="${failed}">`];
  for (const [attack, results] of [...classes].sort(([a], [b]) => a.localeCompare(b))) {
    const failures = results.filter((r) => r.verdict !== "pass").length;
    out.push(`  <testsuite name="${xml(attack)}" tests="${results.length}" failures="${failures}">`);
    for (const r of results) {
      out.push(`    <testcase classname="xtest.${xml(attack)}" name="${xml(r.case.id)}">`);
      if (r.verdict !== "pass") {
        const message = `${r.verdict}: expected ${describeExpect(r)}, got ${describeOutcome(r.outcome)}`;
        out.push(`      <failure type="${r.verdict}" message="${xml(message)}"/>`);
      }
      out.push(`    </testcase>`);
    }
    out.push(`  </testsuite>`);
  }
  out.push(`</testsuites>`);
  return out.join("\n") + "\n";
}

export function jsonReport(suiteName: string, report: RunReport): string {
  return JSON.stringify(
    {
      suite: suiteName,
      target: report.target,
      summary: { cases: report.results.length, leaks: report.leaks.length, failures: report.failures.length, by_class: report.byClass },
      results: report.results.map((r) => ({
        id: r.case.id,
        attack: r.case.attack,
        request: r.case.request,
        expect: r.case.expect,
        outcome: r.outcome,
        verdict: r.verdict,
      })),
    },
    null,
    2,
  );
}
