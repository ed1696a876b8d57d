import { mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../clock.js";
import type { Db } from "../store/database.js";
import { AUDIT_CHAIN_NAMES } from "./audit-chain.js";
import { takeCheckpoint, type Checkpoint } from "./audit-checkpoint.js";

export interface AutoCheckpointSettings {
  /** Ed25519 private key (PEM) the checkpoints are signed with. */
  privateKeyPem: string;
  /** Directory the checkpoint files go to; ship it off-host. */
  dir: string;
  /** A checkpoint once this many records were appended over both chains since the last... */
  everyRecords: number;
  /** ...or once this long passed with any record appended. */
  intervalMs: number;
}

/** How often the heads are looked at: cheap (two max(rowid) lookups), so the record bound is kept closely. */
const POLL_MS = 1_000;
/** meta keys (integer values) of the last checkpoint written by any process on the file. */
const LAST_AT_KEY = "audit_checkpoint_last_at";
/** Sum of the chains' head rowids then: rowids grow by one per record, so the difference counts appended records. */
const LAST_ROW_IDS_KEY = "audit_checkpoint_last_row_ids";

/** A checkpoint this process has taken the right to write, and the meta values it replaced. */
interface Claim {
  checkpoint: Checkpoint;
  at: number;
  rowIds: number;
  previous: { at: number; rowIds: number };
}

/**
 * Signed checkpoints written by the sidecar itself (issue 17, ADR 58): every
 * `everyRecords` records or `intervalMs`, whichever comes first, one file
 * `checkpoint-<time>.json` in `dir`, the same format as `bulkhead audit
 * checkpoint` prints, so `audit verify --checkpoint <file or dir>` takes it.
 *
 * Processes sharing the file (`--workers`) elect the writer through meta
 * `audit_checkpoint_last_*`: each compares and sets them in one IMMEDIATE
 * transaction, and only the one that set it writes the file.
 */
export class AutoCheckpoints {
  private timer: NodeJS.Timeout | null = null;
  private readonly heads;
  private readonly readLast;
  private readonly writeLast;

  constructor(private readonly deps: { db: Db; clock: Clock; settings: AutoCheckpointSettings; log: (message: string) => void }) {
    const { db } = deps;
    this.heads = AUDIT_CHAIN_NAMES.map((chain) => db.prepare<[], number | null>(`SELECT max(rowid) FROM ${chain}`).pluck());
    this.readLast = db.prepare<[string], number>("SELECT value FROM meta WHERE key = ?").pluck();
    this.writeLast = db.prepare<[string, number]>("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    mkdirSync(deps.settings.dir, { recursive: true, mode: 0o700 });
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), Math.min(POLL_MS, this.deps.settings.intervalMs)).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Writes a checkpoint when one is due; returns its file, or null. Never throws: the sidecar keeps serving. */
  tick(): string | null {
    try {
      const claimed = this.claim();
      if (!claimed) return null;
      try {
        return this.write(claimed.checkpoint, claimed.rowIds);
      } catch (error) {
        // Not written, so not taken: the next tick (of any process) tries again.
        this.release(claimed);
        throw error;
      }
    } catch (error) {
      this.deps.log(`audit checkpoint not written: ${(error as Error).message}`);
      return null;
    }
  }

  /** One IMMEDIATE transaction: is one due, and has no other process just taken it? Then record it as taken. */
  private claim(): Claim | null {
    const { db, clock, settings } = this.deps;
    return db.transaction(() => {
      const now = clock.now();
      const rowIds = this.heads.reduce((sum, head) => sum + (head.get() ?? 0), 0);
      const lastAt = this.readLast.get(LAST_AT_KEY) ?? 0;
      const appended = rowIds - (this.readLast.get(LAST_ROW_IDS_KEY) ?? 0);
      if (appended <= 0 || (appended < settings.everyRecords && now - lastAt < settings.intervalMs)) return null;
      const previous = { at: lastAt, rowIds: this.readLast.get(LAST_ROW_IDS_KEY) ?? 0 };
      this.writeLast.run(LAST_AT_KEY, now);
      this.writeLast.run(LAST_ROW_IDS_KEY, rowIds);
      return { checkpoint: takeCheckpoint(db, new Date(now), settings.privateKeyPem), at: now, rowIds, previous };
    }).immediate();
  }

  /** Undoes a claim whose file could not be written, unless another process has claimed a newer one since. */
  private release(claimed: Claim): void {
    this.deps.db.transaction(() => {
      if (this.readLast.get(LAST_AT_KEY) !== claimed.at || this.readLast.get(LAST_ROW_IDS_KEY) !== claimed.rowIds) return;
      this.writeLast.run(LAST_AT_KEY, claimed.previous.at);
      this.writeLast.run(LAST_ROW_IDS_KEY, claimed.previous.rowIds);
    }).immediate();
  }

  /**
   * Written to a temporary name and renamed, so a shipper never picks up half a file.
   * The name carries the time and the padded head position: two checkpoints in one
   * millisecond get two files, and names still sort oldest first.
   */
  private write(checkpoint: Checkpoint, rowIds: number): string {
    const name = `checkpoint-${checkpoint.at.replace(/[-:.]/g, "")}-${String(rowIds).padStart(15, "0")}.json`;
    const file = join(this.deps.settings.dir, name);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(checkpoint, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
    return file;
  }
}

/** The newest checkpoint file in `dir` (names sort by time), for `audit verify --checkpoint DIR`; null when there is none. */
export function latestCheckpointFile(dir: string): string | null {
  const names = readdirSync(dir).filter((n) => /^checkpoint-.*\.json$/.test(n)).sort();
  return names.length > 0 ? join(dir, names.at(-1)!) : null;
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
