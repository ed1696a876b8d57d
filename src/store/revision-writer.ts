import type { Clock } from "../clock.js";
import type { Statement } from "better-sqlite3";
import type { Db } from "./database.js";
import { noteCommit } from "./write-attempt.js";

/** One committed change: at `revision`, `kind` of data changed for `tenantId` (null = every tenant). */
export interface ChangeRecord {
  revision: number;
  tenantId: string | null;
  kind: string;
}

/**
 * What a store mutator receives inside a write. Mutators take it as their first
 * argument, so no code can write without going through RevisionWriter.write.
 */
export interface WriteScope {
  /** The write's timestamp (epoch ms), one value for the whole transaction. */
  readonly now: number;
  /** The revision this write commits as, if it changes anything. */
  readonly revision: number;
  /** Declares what the write touched; caches invalidate from these records. */
  changed(tenantId: string | null, kind: string): void;
  /** Declares that the write only appended history no decision reads (a billing event row), so it invalidates nothing. */
  noted(kind: string): void;
}

export interface Committed<T> {
  result: T;
  /** The store revision this write committed as: the read-your-writes token. */
  revision: number;
}

/**
 * The one path for state writes. Each call is one IMMEDIATE transaction that
 * runs the mutators, bumps `meta.revision` by one and appends the declared
 * change records; listeners hear about the records only after the commit.
 * A call that wrote no row (an idempotent replay, a denied consume) commits
 * no revision. A write started inside another write joins it: the outer one
 * commits (or rolls back) everything as one revision, which is how a batch
 * of consuming checks stays all-or-nothing.
 *
 * The function must be synchronous (better-sqlite3 transactions cannot span an
 * await): fetch and verify first, then write.
 */
export class RevisionWriter {
  private readonly bump;
  private readonly current;
  private readonly setRevision;
  private readonly totalChanges;
  private readonly appendChange;
  private readonly listeners: ((changes: ChangeRecord[], revision: number) => void)[] = [];
  private active: WriteScope | null = null;
  /** Set in replicated mode: only commands applied from the log may write (applyAt). */
  private localWritesRefused: (() => Error) | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    /** Throws when the database file is no longer the one opened, and hears whether writes work (StoreFileGuard). */
    private readonly fileGuard?: { require(): void; writeFailed(error: unknown): void; writeSucceeded(): void },
  ) {
    this.bump = db.prepare<[], { value: number }>(
      "UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value",
    );
    this.current = db.prepare<[], number>("SELECT value FROM meta WHERE key = 'revision'").pluck();
    this.setRevision = db.prepare<[number], { value: number }>("UPDATE meta SET value = ? WHERE key = 'revision' RETURNING value");
    this.totalChanges = db.prepare<[], number>("SELECT total_changes()").pluck();
    this.appendChange = db.prepare("INSERT INTO changes (revision, tenant_id, kind, at) VALUES (?, ?, ?, ?)");
  }

  /** Hears every committed revision, with its change records (none for a write that only noted history). */
  onCommit(listener: (changes: ChangeRecord[], revision: number) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Replicated mode: the local file is a view of the log, so a write that did
   * not come from the log would make this sidecar disagree with the others.
   * Every such write fails with `refusal()`; applyAt still writes.
   */
  refuseLocalWrites(refusal: () => Error): void {
    this.localWritesRefused = refusal;
  }

  /** `now` overrides the clock: a command carries the time it was made at, so every sidecar applies it at that time. */
  write<T>(mutate: (scope: WriteScope) => T, now: number = this.clock.now()): Committed<T> {
    if (this.active) return { result: mutate(this.active), revision: this.active.revision };
    if (this.localWritesRefused) throw this.localWritesRefused();
    return this.commit(mutate, now, null);
  }

  /**
   * Applies one log entry as exactly `revision` (its stream sequence), at the
   * time the entry carries. The revision moves even when the entry changed
   * nothing or `mutate` threw a domain error (a refused write is still a
   * position in the log every sidecar passes): its rows roll back to a
   * savepoint, the revision commits, and the error is returned as the
   * outcome. Any other error (SQLite failed) rolls back everything and throws,
   * so the entry is applied again later, never skipped.
   */
  applyAt<T>(revision: number, now: number, mutate: (scope: WriteScope) => T, isOutcome: (error: unknown) => boolean): Committed<{ ok: true; value: T } | { ok: false; error: unknown }> {
    if (this.active) throw new Error("applyAt inside another write");
    return this.commit((scope, discard) => {
      const inner = this.db.transaction(() => mutate(scope));
      try {
        return { ok: true as const, value: inner() };
      } catch (error) {
        if (!isOutcome(error)) throw error;
        discard();
        return { ok: false as const, error };
      }
    }, now, revision);
  }

  /**
   * Runs `mutate` on the current state and rolls everything back: the answer
   * a write would give now, without writing (replicated mode decides whether
   * a Consume is worth appending this way).
   */
  simulate<T>(mutate: (scope: WriteScope) => T, now: number): T {
    if (this.active) throw new Error("simulate inside another write");
    const rollback = new Error("simulate: roll back");
    let result: T | undefined;
    try {
      this.db.transaction(() => {
        // The revision it saw: an answer that is final here (a denial) is as of the current state.
        const scope: WriteScope = { now, revision: this.current.get()!, changed: () => {}, noted: () => {} };
        this.active = scope;
        try {
          result = mutate(scope);
        } finally {
          this.active = null;
        }
        throw rollback;
      })();
    } catch (error) {
      if (error !== rollback) throw error;
    }
    return result as T;
  }

  /** `at`: commit as exactly this revision even if nothing changed (a log entry); null: the next one, only if something changed. */
  private commit<T>(mutate: (scope: WriteScope, discard: () => void) => T, now: number, at: number | null): Committed<T> {
    this.fileGuard?.require();
    const touched = new Map<string, { tenantId: string | null; kind: string }>();
    let noted = false;
    let bumped = false;
    const transaction = this.db.transaction(() => {
      const before = this.totalChanges.get()!;
      const current = this.current.get()!;
      if (at !== null && at <= current) throw new Error(`log entry ${at} is not after the applied revision ${current}`);
      const scope: WriteScope = {
        now,
        revision: at ?? current + 1,
        changed: (tenantId, kind) => touched.set(`${tenantId ?? ""}\u0000${kind}`, { tenantId, kind }),
        noted: () => {
          noted = true;
        },
      };
      this.active = scope;
      let result: T;
      let discarded = false;
      try {
        result = mutate(scope, () => {
          discarded = true;
          touched.clear();
          noted = false;
        });
      } finally {
        this.active = null;
      }
      const wrote = !discarded && this.totalChanges.get() !== before;
      if (!wrote) touched.clear();
      if (!wrote && at === null) return { result, revision: current };
      // A write that declared nothing is treated as touching everything:
      // over-invalidation is safe, a stale cache is not.
      if (wrote && touched.size === 0 && !noted) touched.set("", { tenantId: null, kind: "unspecified" });
      const revision = at === null ? this.bump.get()!.value : this.setRevision.get(at)!.value;
      bumped = true;
      for (const c of touched.values()) this.appendChange.run(revision, c.tenantId, c.kind, now);
      return { result, revision };
    });
    let committed: Committed<T>;
    try {
      committed = transaction.immediate();
    } catch (error) {
      this.fileGuard?.writeFailed(error);
      throw error;
    }
    this.fileGuard?.writeSucceeded();
    noteCommit();
    if (!bumped) return committed;
    // A noted-only write still moves the revision, and min_revision waits on it.
    const records = [...touched.values()].map((c) => ({ ...c, revision: committed.revision }));
    for (const listener of this.listeners) listener(records, committed.revision);
    return committed;
  }
}

// One prepared statement per connection: every context miss reads the revision.
const revisionStatements = new WeakMap<Db, Statement<[], number>>();

export function readRevision(db: Db): number {
  let statement = revisionStatements.get(db);
  if (!statement) {
    statement = db.prepare<[], number>("SELECT value FROM meta WHERE key = 'revision'").pluck();
    revisionStatements.set(db, statement);
  }
  return statement.get() ?? 0;
}
