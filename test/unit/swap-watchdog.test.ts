import { describe, expect, it } from "vitest";
import type { Evaluation } from "../../src/engine/evaluation-pool.js";
import { RecentInputs } from "../../src/engine/recent-inputs.js";
import { SwapWatchdog } from "../../src/engine/swap-watchdog.js";

const ok = (ms = 1): Evaluation => ({ kind: "result", resultSet: [], ms });
const trap: Evaluation = { kind: "trap", message: "boom", ms: 1 };
const overBudget: Evaluation = { kind: "budget", ms: 250 };

describe("SwapWatchdog", () => {
  const thresholds = { windowMs: 0, minEvaluations: 10, maxErrorRate: 0.1, maxMeanLatencyMs: 50 };

  it("says nothing before the minimum number of evaluations, then names the error-rate breach once", () => {
    const watchdog = new SwapWatchdog(thresholds);
    for (let i = 0; i < 8; i++) expect(watchdog.record(ok())).toBeUndefined();
    expect(watchdog.record(trap)).toBeUndefined();
    expect(watchdog.record(overBudget)).toBe("error rate 20.0% over its first 10 evaluations is above 10.0%");
    expect(watchdog.record(trap)).toBeUndefined();
    expect(watchdog.settled).toBe(false);
  });

  it("breaches on a mean latency above the threshold with no errors", () => {
    const watchdog = new SwapWatchdog(thresholds);
    for (let i = 0; i < 9; i++) watchdog.record(ok(60));
    expect(watchdog.record(ok(60))).toMatch(/^mean evaluation time 60\.0 ms over its first 10 evaluations is above 50 ms$/);
  });

  it("settles after the window and the minimum with a rate at the threshold", () => {
    const watchdog = new SwapWatchdog(thresholds);
    for (let i = 0; i < 9; i++) watchdog.record(ok());
    expect(watchdog.settled).toBe(false);
    expect(watchdog.record(trap)).toBeUndefined(); // 10% is not above 10%
    expect(watchdog.settled).toBe(true);
  });
});

describe("RecentInputs", () => {
  it("keeps the newest inputs up to its capacity and skips an oversized one", () => {
    const ring = new RecentInputs(3, 10);
    for (const json of ["a", "b", "c", "d", "x".repeat(11)]) ring.add(json);
    expect(ring.sample().sort()).toEqual(["b", "c", "d"]);
  });
});
