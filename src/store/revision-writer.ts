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
  private readonly totalChanges;
  private readonly appendChange;
  private readonly listeners: ((changes: ChangeRecord[], revision: number) => void)[] = [];
  private active: WriteScope | null = null;

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
    this.totalChanges = db.prepare<[], number>("SELECT total_changes()").pluck();
    this.appendChange = db.prepare("INSERT INTO changes (revision, tenant_id, kind, at) VALUES (?, ?, ?, ?)");
  }

  /** Hears every committed revision, with its change records (none for a write that only noted history). */
  onCommit(listener: (changes: ChangeRecord[], revision: number) => void): void {
    this.listeners.push(listener);
  }

  write<T>(mutate: (scope: WriteScope) => T): Committed<T> {
    if (this.active) return { result: mutate(this.active), revision: this.active.revision };
    this.fileGuard?.require();
    const now = this.clock.now();
    const touched = new Map<string, { tenantId: string | null; kind: string }>();
    let noted = false;
    let bumped = false;
    const transaction = this.db.transaction(() => {
      const before = this.totalChanges.get()!;
      const current = this.current.get()!;
      const scope: WriteScope = {
        now,
        revision: current + 1,
        changed: (tenantId, kind) => touched.set(`${tenantId ?? ""}\u0000${kind}`, { tenantId, kind }),
        noted: () => {
          noted = true;
        },
      };
      this.active = scope;
      let result: T;
      try {
        result = mutate(scope);
      } finally {
        this.active = null;
      }
      if (this.totalChanges.get() === before) {
        touched.clear();
        return { result, revision: current };
      }
      // A write that declared nothing is treated as touching everything:
      // over-invalidation is safe, a stale cache is not.
      if (touched.size === 0 && !noted) touched.set("", { tenantId: null, kind: "unspecified" });
      const revision = this.bump.get()!.value;
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
