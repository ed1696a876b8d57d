import type { Evaluation } from "./evaluation-pool.js";

/** When a freshly swapped-in bundle counts as bad (ADR 45). */
export interface WatchdogThresholds {
  /** How long after a swap the new bundle is watched (and the last good one kept loaded). */
  windowMs: number;
  /** Evaluations needed before a rate means anything; the watch lasts until this many are seen too. */
  minEvaluations: number;
  /** Most evaluations that may fail (trap, exhausted heap, over budget), as a fraction. */
  maxErrorRate: number;
  /** Highest mean evaluation time, in ms. */
  maxMeanLatencyMs: number;
}

export const WATCHDOG_DEFAULTS: WatchdogThresholds = { windowMs: 30_000, minEvaluations: 20, maxErrorRate: 0.05, maxMeanLatencyMs: 100 };

/**
 * Watches the evaluations of a bundle just swapped in. The trial before the
 * swap replays only the inputs seen so far; traffic after it may have shapes
 * the sample lacked, so the first evaluations of a new bundle are counted
 * and compared with the thresholds. `record` returns the breach, once, when
 * there is one; `settled` says when the watch is over and the last good
 * bundle may be let go.
 */
export class SwapWatchdog {
  private evaluations = 0;
  private errors = 0;
  private totalMs = 0;
  private breached = false;
  private readonly startedAt = performance.now();

  constructor(private readonly thresholds: WatchdogThresholds) {}

  record(evaluation: Evaluation): string | undefined {
    if (this.breached) return undefined;
    this.evaluations++;
    this.totalMs += evaluation.ms;
    if (evaluation.kind !== "result") this.errors++;
    if (this.evaluations < this.thresholds.minEvaluations) return undefined;
    const breach = this.breach();
    if (breach) this.breached = true;
    return breach;
  }

  get settled(): boolean {
    return !this.breached && this.evaluations >= this.thresholds.minEvaluations && performance.now() - this.startedAt >= this.thresholds.windowMs;
  }

  private breach(): string | undefined {
    const { maxErrorRate, maxMeanLatencyMs } = this.thresholds;
    const rate = this.errors / this.evaluations;
    if (rate > maxErrorRate) {
      return `error rate ${percent(rate)} over its first ${this.evaluations} evaluations is above ${percent(maxErrorRate)}`;
    }
    const mean = this.totalMs / this.evaluations;
    if (mean > maxMeanLatencyMs) {
      return `mean evaluation time ${mean.toFixed(1)} ms over its first ${this.evaluations} evaluations is above ${maxMeanLatencyMs} ms`;
    }
    return undefined;
  }
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;
