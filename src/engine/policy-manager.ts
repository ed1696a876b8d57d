import { watch, type FSWatcher } from "node:fs";
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

  /** Reloads from disk; concurrent calls queue so swaps happen in order. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.loadCandidate());
    return this.reloading;
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
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
    this.watcher = watch(this.options.dir, () => {
      // A build writes three files; wait for it to settle, then load once.
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reload(), this.options.debounceMs ?? 200);
    });
    this.watcher.on("error", (error) => this.options.log?.(`policy watcher failed: ${error.message}`));
  }
}
