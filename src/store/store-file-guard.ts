import { statSync } from "node:fs";
import { BulkheadError } from "../errors.js";

/**
 * Notices when the database file is deleted or replaced under a running
 * sidecar. SQLite keeps writing to the inode it opened, so without this a
 * deleted file kept acknowledging writes (all lost at restart) and a replaced
 * one kept answering Checks from state that no longer exists. Once the path
 * names another file, or none, every write and decision fails with
 * STORE_FAILED and readiness goes false until the process is restarted.
 *
 * The file is checked on a timer, so the per-call cost is one boolean; the
 * window between the swap and the next check is at most `intervalMs`.
 */
export class StoreFileGuard {
  private readonly opened: { dev: number; ino: number } | null;
  private lostReason: string | null = null;
  /** Set while writes fail for a reason of the storage itself (disk full, I/O error, read-only, corrupt). */
  private writeProblem: string | null = null;
  private readonly timer: NodeJS.Timeout | null;

  constructor(
    private readonly path: string,
    private readonly log: (message: string) => void = () => {},
    intervalMs = 500,
  ) {
    const stat = path === ":memory:" || path === "" ? null : statSync(path);
    this.opened = stat && { dev: stat.dev, ino: stat.ino };
    this.timer = this.opened ? setInterval(() => this.inspect(), intervalMs) : null;
    this.timer?.unref();
  }

  /** Whether the path still names the file this process opened. */
  get intact(): boolean {
    return this.lostReason === null;
  }

  /** Whether writes can be made: the file is intact and the last write did not fail on storage. */
  get writable(): boolean {
    return this.lostReason === null && this.writeProblem === null;
  }

  get problem(): string | null {
    return this.lostReason ?? this.writeProblem;
  }

  /**
   * A write failed. Storage failures (SQLITE_FULL, SQLITE_IOERR*, SQLITE_READONLY*,
   * SQLITE_CORRUPT) make the store unwritable until a write succeeds again;
   * a constraint or a refused business rule says nothing about the disk.
   */
  writeFailed(error: unknown): void {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string" || !/^SQLITE_(FULL|IOERR|READONLY|CORRUPT|NOTADB|CANTOPEN)/.test(code)) return;
    if (this.writeProblem === null) this.log(`writes to ${this.path} fail (${code}): ${(error as Error).message}; not ready until one succeeds`);
    this.writeProblem = `writes to the database fail: ${code}`;
  }

  writeSucceeded(): void {
    if (this.writeProblem !== null) this.log(`writes to ${this.path} work again`);
    this.writeProblem = null;
  }

  /** Throws STORE_FAILED once the file is gone or replaced. */
  require(): void {
    if (this.lostReason !== null) throw new BulkheadError("STORE_FAILED", this.lostReason);
  }

  /** Looks at the path now; the timer calls this, and tests may. */
  inspect(): void {
    if (!this.opened || this.lostReason !== null) return;
    let now;
    try {
      now = statSync(this.path);
    } catch {
      this.lose(`the database file ${this.path} was deleted under the sidecar; restart it on the right file`);
      return;
    }
    if (now.dev !== this.opened.dev || now.ino !== this.opened.ino) {
      this.lose(`the database file ${this.path} was replaced by another file under the sidecar; restart it to use the new one`);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private lose(reason: string): void {
    this.lostReason = reason;
    this.log(`${reason}; refusing writes and decisions, not ready`);
  }
}
