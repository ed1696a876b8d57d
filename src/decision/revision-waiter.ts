import { BulkheadError } from "../errors.js";
import type { CancelSignal } from "../engine/call-window.js";

interface Waiter {
  minRevision: number;
  giveUpAt: number;
  resolve: (revision: number) => void;
  reject: (error: unknown) => void;
  signal?: CancelSignal | undefined;
  onAbort?: () => void;
}

/**
 * The one place requests wait for a `min_revision`. Other processes write
 * the same SQLite file, so a change can only be seen by reading the store's
 * revision; instead of one polling loop per waiting request, one shared
 * timer reads it (one `sync()` per tick however many requests wait) and wakes
 * every waiter it satisfies. The timer runs only while someone waits. A wait
 * ends at its budget with STORE_REVISION_NOT_REACHED, when its signal aborts
 * (the stream that asked is gone), or with the store's error if reading the
 * revision fails: never with a revision the store has not reached.
 */
export class RevisionWaiter {
  private readonly waiters = new Set<Waiter>();
  private timer: NodeJS.Timeout | undefined;

  /** `sync` reads the store's current revision; `pollMs` is the tick. */
  constructor(
    private readonly sync: () => number,
    private readonly pollMs = 5,
  ) {}

  /** How many requests wait now (for tests and metrics). */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Resolves with the revision once the store reached `minRevision`. */
  wait(minRevision: number, budgetMs: number, signal?: CancelSignal): Promise<number> {
    const revision = this.sync();
    if (revision >= minRevision) return Promise.resolve(revision);
    if (signal?.aborted) return Promise.reject(cancelled());
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = { minRevision, giveUpAt: performance.now() + budgetMs, resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => this.settle(waiter, () => reject(cancelled()));
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.waiters.add(waiter);
      this.timer ??= setInterval(() => this.tick(), this.pollMs);
    });
  }

  private tick(): void {
    let revision: number;
    try {
      revision = this.sync();
    } catch (error) {
      for (const waiter of [...this.waiters]) this.settle(waiter, () => waiter.reject(error));
      return;
    }
    const now = performance.now();
    for (const waiter of [...this.waiters]) {
      if (revision >= waiter.minRevision) this.settle(waiter, () => waiter.resolve(revision));
      else if (now >= waiter.giveUpAt) this.settle(waiter, () => waiter.reject(notReached(revision, waiter.minRevision)));
    }
  }

  private settle(waiter: Waiter, finish: () => void): void {
    if (!this.waiters.delete(waiter)) return;
    if (waiter.onAbort) waiter.signal?.removeEventListener("abort", waiter.onAbort);
    if (this.waiters.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    finish();
  }
}

function notReached(revision: number, minRevision: number): BulkheadError {
  return new BulkheadError("STORE_REVISION_NOT_REACHED", `store is at revision ${revision}, request needs ${minRevision}`, "min_revision");
}

function cancelled(): BulkheadError {
  return new BulkheadError("STORE_REVISION_NOT_REACHED", "the request was cancelled while waiting for min_revision", "min_revision");
}
