import { realpathSync, statSync, watch, type FSWatcher } from "node:fs";
import type { PolicySource } from "./policy-source.js";
import { BulkheadError, UsageError } from "../errors.js";
import { trialCandidate } from "./candidate-trial.js";
import type { Evaluation } from "./evaluation-pool.js";
import { readPolicyBundle } from "./policy-bundle.js";
import { PolicySet, type EvaluationSettings } from "./policy-set.js";
import { RecentInputs } from "./recent-inputs.js";
import { SwapWatchdog, WATCHDOG_DEFAULTS, type WatchdogThresholds } from "./swap-watchdog.js";

export interface PolicyStatus {
  /** ready: serving the newest bundle; degraded: a newer bundle was rejected, or
   * rolled back after its swap, and the last good one serves; unloaded: nothing
   * has loaded yet. */
  state: "unloaded" | "ready" | "degraded";
  revision: string | null;
  lastError: string | null;
  reloads: number;
  rejected: number;
  /** Bundles swapped in and then rolled back by the watchdog. */
  rollbacks: number;
  /** The revision last rolled back and why; it is not loaded again until the files change. */
  rolledBack: { revision: string; reason: string } | null;
}

/** The evaluation budget and pool size when none is configured (src/config.ts). */
export const EVALUATION_DEFAULTS: EvaluationSettings = { workers: 2, budgetMs: 250 };

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
  /** Worker threads and per-evaluation budget (default EVALUATION_DEFAULTS). */
  evaluation?: EvaluationSettings;
  /** Longest the whole pre-swap trial may take (default 5000 ms). */
  trialBudgetMs?: number;
  /** When a bundle just swapped in is rolled back (default WATCHDOG_DEFAULTS). */
  watchdog?: Partial<WatchdogThresholds>;
}

/**
 * Owns the current PolicySet. Reload is build-then-swap: the candidate is read,
 * loaded in its own evaluation workers and put on trial (smoke cases plus a
 * replay of recent real inputs, within budgets), and only then replaces the
 * one reference; any failure keeps the old set serving and marks the status
 * degraded. After a swap the last good set stays loaded while a watchdog
 * counts the new one's failures and latency; a breach swaps it back.
 */
export class PolicyManager implements PolicySource {
  private current: PolicySet | null = null;
  /** The set a swap replaced, kept loaded until the watchdog settles. */
  private lastGood: PolicySet | null = null;
  private watchdog: SwapWatchdog | null = null;
  private readonly recent = new RecentInputs();
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
    rollbacks: 0,
    rolledBack: null,
  };

  constructor(private readonly options: PolicyManagerOptions) {}

  /** Loads the bundle once and starts watching. Start-up fails if the first load fails. */
  async start(): Promise<void> {
    await this.reload();
    if (!this.current) throw new UsageError(`no usable policy bundle in ${this.options.dir} (BULKHEAD_POLICY_DIR / --policy-dir; build one with npm run build:policies): ${this.statusValue.lastError}`);
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

  /** Stops watching the directory; the loaded sets keep answering (a drain may still need them). */
  stop(): void {
    this.closeWatcher();
    if (this.identityTimer) clearInterval(this.identityTimer);
    this.identityTimer = null;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Stops watching and shuts every evaluation worker down; evaluations still running fail closed. */
  async close(): Promise<void> {
    this.stop();
    await this.reloading;
    await Promise.all([this.current?.close(), this.lastGood?.close()]);
  }

  private async loadCandidate(): Promise<void> {
    try {
      const bundle = await readPolicyBundle(this.options.dir);
      if (bundle.revision === this.current?.revision) {
        if (!this.statusValue.rolledBack) this.markReady();
        return;
      }
      if (bundle.revision === this.statusValue.rolledBack?.revision) return;
      const candidate = await PolicySet.load(bundle, { smokeTest: false, evaluation: this.options.evaluation ?? EVALUATION_DEFAULTS });
      try {
        await trialCandidate(candidate, this.recent.sample(), this.options.trialBudgetMs ?? 5000);
      } catch (error) {
        await candidate.close();
        throw error;
      }
      this.swapIn(candidate);
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

  private swapIn(candidate: PolicySet): void {
    const previous = this.current;
    this.lastGood?.retire();
    this.lastGood = previous;
    this.current = candidate;
    this.watchdog = previous ? new SwapWatchdog({ ...WATCHDOG_DEFAULTS, ...this.options.watchdog }) : null;
    candidate.observer = (json, evaluation) => this.observe(candidate, json, evaluation);
    this.statusValue.reloads++;
    this.statusValue.rolledBack = null;
    this.markReady();
    this.options.log?.(`policy bundle ${candidate.revision} loaded${previous ? ` (was ${previous.revision})` : ""}`);
    if (previous) for (const listener of this.swapListeners) listener(candidate.revision);
  }

  /** Every evaluation of the serving set: keep the input as a sample, feed the watchdog. */
  private observe(set: PolicySet, json: string, evaluation: Evaluation): void {
    if (set !== this.current) return;
    // Only inputs a good bundle answered are samples: one that traps the serving
    // bundle too says nothing about the candidate.
    if (evaluation.kind === "result") this.recent.add(json);
    if (!this.watchdog) return;
    const breach = this.watchdog.record(evaluation);
    if (breach) this.rollBack(breach);
    else if (this.watchdog.settled) this.settle();
  }

  /** The new set held up through the watch: the one it replaced may go. */
  private settle(): void {
    this.watchdog = null;
    this.lastGood?.retire();
    this.lastGood = null;
  }

  private rollBack(reason: string): void {
    const bad = this.current!;
    const good = this.lastGood!;
    this.current = good;
    this.lastGood = null;
    this.watchdog = null;
    bad.retire();
    this.statusValue.rollbacks++;
    this.statusValue.rolledBack = { revision: bad.revision, reason };
    this.statusValue.state = "degraded";
    this.statusValue.revision = good.revision;
    this.statusValue.lastError = `bundle ${bad.revision} rolled back: ${reason}`;
    this.options.log?.(`policy bundle ${bad.revision} rolled back to ${good.revision}: ${reason}`);
    for (const listener of this.swapListeners) listener(good.revision);
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
