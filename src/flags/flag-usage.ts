import type { Clock } from "../clock.js";
import type { WriteGuard } from "../store/write-lock-backoff.js";
import type { FlagStore } from "./flag-store.js";

/** How often FlagUsage writes what it saw: coarse on purpose, the stale report counts in days. */
export const FLAG_USAGE_FLUSH_MS = 60_000;

/**
 * When each flag was last evaluated, kept off the hot path: an evaluation
 * is one Map.set in memory (a Check for an action whose catalog entry names
 * the flag, or a flag answered over EvaluateFlags or OFREP), and the map is
 * written in one batched UPDATE every FLAG_USAGE_FLUSH_MS and on shutdown,
 * never a write per Check. The map holds at most one entry per flag name.
 *
 * A flush that cannot write (another process holds the write lock, the disk
 * is full) keeps the entries for the next one; losing them would at worst
 * make a used flag look unused for one interval. Not replicated: each
 * sidecar records what it evaluated itself (ADR 52).
 */
export class FlagUsage {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(private readonly deps: { flags: Pick<FlagStore, "recordEvaluated">; clock: Clock; guard?: WriteGuard; log?: (message: string) => void }) {}

  saw(key: string): void {
    this.pending.set(key, this.deps.clock.now());
  }

  /** Writes what was seen since the last flush; false when the write failed (the entries are kept). */
  flush(): boolean {
    if (this.pending.size === 0) return true;
    const batch = this.pending;
    this.pending = new Map();
    try {
      this.deps.guard?.require();
      this.deps.flags.recordEvaluated(batch);
      this.deps.guard?.writeSucceeded();
      this.failing = false;
      return true;
    } catch (error) {
      this.deps.guard?.writeFailed(error);
      // Later sightings win over the failed batch's.
      for (const [key, at] of batch) if (!this.pending.has(key)) this.pending.set(key, at);
      if (!this.failing) this.deps.log?.(`flag usage: last-evaluated times not written, kept for the next flush: ${(error as Error).message}`);
      this.failing = true;
      return false;
    }
  }

  /** Flushes every `intervalMs` until stop(); unref: it never holds the process up. */
  start(intervalMs: number = FLAG_USAGE_FLUSH_MS): void {
    this.timer ??= setInterval(() => this.flush(), intervalMs).unref();
  }

  /** Stops the timer and writes what is left (shutdown). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
