import { realpathSync, statSync, watch, type FSWatcher } from "node:fs";
import type { PolicySource } from "./policy-source.js";
import { BulkheadError } from "../errors.js";
import { readPolicyBundle } from "./policy-bundle.js";
import { PolicySet } from "./policy-set.js";

export interface PolicyStatus {
  /** ready: serving the newest bundle; degraded: a newer bundle was rejected and
   * the last good one serves; unloaded: nothing has loaded yet. */
  state: "unloaded" | "ready" | "degraded";
  revision: string | null;
  lastError: string | null;
  reloads: number;
  rejected: number;
}

export interface PolicyManagerOptions {
  dir: string;
  /** Watch the directory and reload on change (default true). */
  watch?: boolean;
  debounceMs?: number;
  /**
   * How often to check that the watched directory is still the same one
   * (default 1000 ms). A deploy that swaps the directory or flips a symlink
   * leaves an inotify watch on the old directory, which never fires again.
   */
  identityCheckMs?: number;
  log?: (message: string) => void;
}

/**
 * Owns the current PolicySet. Reload is build-then-swap: the candidate is read,
 * loaded and smoke-tested in full, and only then replaces the one reference;
 * any failure keeps the old set serving and marks the status degraded.
 */
export class PolicyManager implements PolicySource {
  private current: PolicySet | null = null;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private identityTimer: NodeJS.Timeout | null = null;
  /** realpath, device, inode and birth time of the directory the watcher is on; "" when none is. */
  private watchedIdentity = "";
  private reloading: Promise<void> = Promise.resolve();
  private readonly swapListeners: ((revision: string) => void)[] = [];
  private readonly statusValue: PolicyStatus = {
    state: "unloaded",
    revision: null,
    lastError: null,
    reloads: 0,
    rejected: 0,
  };

  constructor(private readonly options: PolicyManagerOptions) {}

  /** Loads the bundle once and starts watching. Start-up fails if the first load fails. */
  async start(): Promise<void> {
    await this.reload();
    if (!this.current) throw new Error(`no usable policy bundle in ${this.options.dir}: ${this.statusValue.lastError}`);
    if (this.options.watch ?? true) this.startWatching();
  }

  /** The set to evaluate with; throws a coded error while none has loaded. */
  get policy(): PolicySet {
    if (!this.current) throw new BulkheadError("POLICY_NOT_LOADED", "no policy bundle has loaded");
    return this.current;
  }

  get status(): Readonly<PolicyStatus> {
    return this.statusValue;
  }

  get revision(): string {
    return this.current?.revision ?? "";
  }

  permissionsOf(role: string): readonly string[] | undefined {
    return this.current?.permissionsOf(role);
  }

  catalogPermissions(): readonly string[] {
    return this.current?.catalogPermissions() ?? [];
  }

  billingAccessOf(status: string): string | undefined {
    return this.current?.billingAccessOf(status);
  }

  /** Called after a new set has replaced the old one (not on the first load). */
  onSwap(listener: (revision: string) => void): void {
    this.swapListeners.push(listener);
  }

  /**
   * Reloads from disk; concurrent calls queue so swaps happen in order. A
   * watching manager also re-aims its watcher first, so SIGHUP after a
   * directory swap restores hot reload as well as loading once.
   */
  reload(): Promise<void> {
    if (this.identityTimer) this.rewatchIfMoved();
    this.reloading = this.reloading.then(() => this.loadCandidate());
    return this.reloading;
  }

  stop(): void {
    this.closeWatcher();
    if (this.identityTimer) clearInterval(this.identityTimer);
    this.identityTimer = null;
    if (this.timer) clearTimeout(this.timer);
  }

  private async loadCandidate(): Promise<void> {
    try {
      const bundle = await readPolicyBundle(this.options.dir);
      if (bundle.revision === this.current?.revision) {
        this.markReady();
        return;
      }
      const candidate = await PolicySet.load(bundle);
      const previous = this.current?.revision;
      this.current = candidate;
      this.statusValue.reloads++;
      this.markReady();
      this.options.log?.(`policy bundle ${candidate.revision} loaded${previous ? ` (was ${previous})` : ""}`);
      if (previous) for (const listener of this.swapListeners) listener(candidate.revision);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.statusValue.rejected++;
      this.statusValue.lastError = message;
      this.statusValue.state = this.current ? "degraded" : "unloaded";
      this.options.log?.(
        `policy bundle rejected: ${message}${this.current ? `; still serving ${this.current.revision}` : ""}`,
      );
    }
  }

  private markReady(): void {
    this.statusValue.state = "ready";
    this.statusValue.revision = this.current!.revision;
    this.statusValue.lastError = null;
  }

  private startWatching(): void {
    this.rewatchIfMoved();
    this.identityTimer = setInterval(() => {
      if (this.rewatchIfMoved()) this.scheduleReload();
    }, this.options.identityCheckMs ?? 1000);
    this.identityTimer.unref();
  }

  /** A build writes three files; wait for it to settle, then load once. */
  private scheduleReload(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload(), this.options.debounceMs ?? 200);
  }

  /**
   * Puts the watcher on the directory the path names now. Returns true when
   * it moved (the directory was replaced, a symlink flipped, or it came back
   * after being deleted); while the path is missing there is nothing to watch
   * and the last good bundle keeps serving.
   */
  private rewatchIfMoved(): boolean {
    const identity = directoryIdentity(this.options.dir);
    if (identity === this.watchedIdentity) return false;
    this.closeWatcher();
    this.watchedIdentity = identity;
    if (!identity) {
      this.options.log?.(`policy directory ${this.options.dir} is gone; still serving ${this.revision || "nothing"}, watching for it to return`);
      return false;
    }
    try {
      this.watcher = watch(this.options.dir, () => this.scheduleReload());
      this.watcher.on("error", (error) => {
        this.options.log?.(`policy watcher failed: ${error.message}; will re-watch`);
        this.closeWatcher();
      });
    } catch (error) {
      this.options.log?.(`policy watcher failed: ${(error as Error).message}; will re-watch`);
      this.closeWatcher();
    }
    return true;
  }

  private closeWatcher(): void {
    this.watcher?.close();
    this.watcher = null;
    this.watchedIdentity = "";
  }
}

/**
 * Which directory a path names right now: "" when it names none. The birth
 * time is part of it because a directory deleted and recreated at once
 * usually gets the freed inode number back.
 */
function directoryIdentity(path: string): string {
  try {
    const real = realpathSync(path);
    const stat = statSync(real);
    return stat.isDirectory() ? `${real}:${stat.dev}:${stat.ino}:${stat.birthtimeMs}` : "";
  } catch {
    return "";
  }
}
