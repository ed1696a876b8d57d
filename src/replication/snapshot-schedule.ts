/**
 * Periodic snapshots (ADR 73), written by whichever sidecar looks first.
 * Every sidecar looks once per interval, each at its own random phase. It
 * writes a snapshot only when the newest one in the bucket is the same one
 * it saw at its previous look (nobody wrote during the last interval) and
 * it has applied entries past it. So in a steady cluster one sidecar writes
 * about once per interval, the others see the new one and stand back, and no
 * clock is compared with another machine's: only "what did I see last time".
 * Two sidecars that look in the same instant may both write; that costs one
 * upload, since snapshots of one revision are the same data.
 */
export interface SnapshotScheduleDeps {
  /** The newest snapshot's revision in the bucket, or null when there is none. */
  newestRevision: () => Promise<number | null>;
  /** The revision this sidecar has applied through. */
  appliedRevision: () => number;
  write: () => Promise<unknown>;
  log: (message: string) => void;
}

export class SnapshotSchedule {
  /** The newest revision seen at the previous look; undefined before the first look. */
  private seen: number | null | undefined = undefined;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly deps: SnapshotScheduleDeps) {}

  /** One look; answers whether this sidecar wrote a snapshot. Never throws: a failed look is logged and tried next interval. */
  async tick(): Promise<boolean> {
    try {
      const newest = await this.deps.newestRevision();
      const quiet = this.seen !== undefined && this.seen === newest;
      this.seen = newest;
      if (!quiet || this.deps.appliedRevision() <= (newest ?? 0)) return false;
      await this.deps.write();
      this.seen = await this.deps.newestRevision();
      return true;
    } catch (error) {
      this.deps.log(`snapshot not written: ${(error as Error).message}`);
      return false;
    }
  }

  /** Looks every `intervalMs`, the first look at a random point of the first interval, so sidecars do not look in step. */
  start(intervalMs: number, random: () => number = Math.random): void {
    if (this.timer) return;
    const look = () => {
      this.running = this.running.then(() => this.tick().then(() => {}));
    };
    this.timer = setTimeout(() => {
      look();
      this.timer = setInterval(look, intervalMs).unref();
    }, Math.floor(random() * intervalMs)).unref();
  }

  /** Stops looking; resolves once a look in progress has finished. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
