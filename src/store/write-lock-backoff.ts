import { BulkheadError, isSqliteBusy } from "../errors.js";

/** What RevisionWriter asks before and tells after each write (StoreFileGuard, this class). */
export interface WriteGuard {
  require(): void;
  writeFailed(error: unknown): void;
  writeSucceeded(): void;
}

/** How long one write may wait for another connection's lock, on the event loop (openDatabase sets it). */
export const WRITE_LOCK_WAIT_MS = 50;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 1_000;

/**
 * Keeps a write lock held by another process from freezing the sidecar.
 * better-sqlite3 waits for a lock synchronously, on the only thread, for the
 * connection's busy_timeout; with one second-process holding `BEGIN
 * EXCLUSIVE` for 8 s, every write (and the decision-log flush) used to wait
 * its full timeout in turn and no Check was answered meanwhile. Now a write
 * waits at most WRITE_LOCK_WAIT_MS; once one has waited that long in vain,
 * writes are refused at once with STORE_BUSY (gRPC UNAVAILABLE: nothing was
 * written, retry) for a backoff that doubles up to a second, after which one
 * write probes the lock again. The event loop loses at most one wait per
 * backoff, and reads, which WAL never blocks, go on being answered.
 *
 * Decorates the file guard, so RevisionWriter keeps one guard to consult.
 */
export class WriteLockBackoff implements WriteGuard {
  private refuseUntil = 0;
  private backoffMs = 0;

  constructor(
    private readonly inner?: WriteGuard,
    private readonly log: (message: string) => void = () => {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether writes are being refused now because another process holds the lock. */
  get locked(): boolean {
    return this.backoffMs > 0 && this.now() < this.refuseUntil;
  }

  /** For /healthz: why writes are refused, or null. */
  get problem(): string | null {
    return this.backoffMs > 0 ? "another process holds the database's write lock; writes are refused until it is released" : null;
  }

  require(): void {
    this.inner?.require();
    if (this.locked) {
      throw new BulkheadError(
        "STORE_BUSY",
        `another process holds the database's write lock; nothing was written (retry in ${Math.ceil(this.refuseUntil - this.now())} ms)`,
      );
    }
  }

  writeFailed(error: unknown): void {
    this.inner?.writeFailed(error);
    if (!isSqliteBusy(error)) return;
    if (this.backoffMs === 0) this.log(`the database is write-locked by another process; refusing writes with STORE_BUSY until it is released`);
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs === 0 ? FIRST_BACKOFF_MS : this.backoffMs * 2);
    this.refuseUntil = this.now() + this.backoffMs;
  }

  writeSucceeded(): void {
    this.inner?.writeSucceeded();
    if (this.backoffMs > 0) this.log("the database's write lock is free again; writes resume");
    this.backoffMs = 0;
  }
}
