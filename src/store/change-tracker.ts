import type { Db } from "./database.js";
import { readRevision, type ChangeRecord } from "./revision-writer.js";

/**
 * Knows, per tenant, the newest revision that changed it, for every process
 * sharing the database: this process's writes arrive from RevisionWriter;
 * other processes' writes are noticed through PRAGMA data_version (which moves
 * only when another connection commits) and read back from `changes`.
 *
 * Cache entries are tagged with the revision they were built at and are fresh
 * while that tag is >= revisionOf(tenant). sync() is called before every
 * decision, so a write acknowledged anywhere is seen by the next Check.
 */
export class ChangeTracker {
  private lastRevision: number;
  /** How far `changes` has been read. Own writes do not move it, so a
   * concurrent commit from another process with a lower revision is not skipped. */
  private tableCursor: number;
  private dataVersion: number;
  private globalRevision = 0;
  private readonly tenantRevisions = new Map<string, number>();
  private readonly since;
  /** Prepared once: db.pragma() compiles a fresh statement on every call, and this runs before every decision. */
  private readonly dataVersionStmt;
  private readonly listeners: ((changes: ChangeRecord[]) => void)[] = [];

  constructor(
    private readonly db: Db,
    /** Throws when the database file is no longer the one opened (StoreFileGuard). */
    private readonly fileGuard?: { require(): void },
  ) {
    this.dataVersionStmt = db.prepare<[], number>("PRAGMA data_version").pluck();
    this.lastRevision = readRevision(db);
    this.tableCursor = this.lastRevision;
    this.dataVersion = this.readDataVersion();
    this.since = db.prepare<[number], { revision: number; tenant_id: string | null; kind: string }>(
      "SELECT revision, tenant_id, kind FROM changes WHERE revision > ? ORDER BY revision",
    );
  }

  /** Catches up with other processes' commits; returns the newest known revision. */
  sync(): number {
    this.fileGuard?.require();
    const version = this.readDataVersion();
    if (version !== this.dataVersion) {
      this.dataVersion = version;
      // The revision is read before the change rows, so every change at or
      // below it is among the rows: lastRevision never runs ahead of them.
      // Revisions without change rows (noted-only writes) still count.
      const revision = readRevision(this.db);
      const rows = this.since.all(this.tableCursor);
      if (rows.length > 0) this.tableCursor = rows[rows.length - 1]!.revision;
      this.observe(rows.map((r) => ({ revision: r.revision, tenantId: r.tenant_id, kind: r.kind })), revision);
    }
    return this.lastRevision;
  }

  /** Records changes committed up to `revision` (by this process, via RevisionWriter, or read back by sync). */
  observe(changes: ChangeRecord[], revision = 0): void {
    this.lastRevision = Math.max(this.lastRevision, revision);
    for (const change of changes) {
      if (change.tenantId === null) {
        this.globalRevision = Math.max(this.globalRevision, change.revision);
      } else {
        const known = this.tenantRevisions.get(change.tenantId) ?? 0;
        this.tenantRevisions.set(change.tenantId, Math.max(known, change.revision));
      }
      this.lastRevision = Math.max(this.lastRevision, change.revision);
    }
    if (changes.length > 0) for (const listener of this.listeners) listener(changes);
  }

  onChange(listener: (changes: ChangeRecord[]) => void): void {
    this.listeners.push(listener);
  }

  /** The newest revision that changed this tenant (or everything). */
  revisionOf(tenantId: string): number {
    return Math.max(this.tenantRevisions.get(tenantId) ?? 0, this.globalRevision);
  }

  get revision(): number {
    return this.lastRevision;
  }

  private readDataVersion(): number {
    return this.dataVersionStmt.get()!;
  }
}
