import { closeSync, fstatSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Db } from "../store/database.js";
import { ChainHead } from "./audit-chain.js";
import type { WriteGuard } from "../store/write-lock-backoff.js";

/** One decision as the audit log keeps it. No secrets: no API keys, no attributes. */
export interface DecisionRecord {
  decisionId: string;
  at: number;
  tenantId: string;
  actorId: string;
  actorType: string;
  action: string;
  resourceType: string;
  resourceId: string;
  resourceTenantId: string;
  allow: boolean;
  reasons: string[];
  policyRevision: string;
  storeRevision: number;
  requestId: string;
  source: string;
  /** The session, staff member and impersonated member when staff acted through an impersonation. */
  impersonation: { session_id: string; staff_id: string; as_actor_id: string } | null;
}

export interface DecisionLogStats {
  /** Records taken but not yet in the decision_log table (in the journal, or the memory buffer). */
  pending: number;
  /** Records this process moved into the decision_log table. */
  written: number;
  /** Records this process lost: the journal could not take them (or, without a journal, the buffer was full). */
  dropped: number;
  /** This process's drops by cause. */
  droppedBy: Record<DropCause, number>;
  /** Records lost over the store's life, as counted in the store (meta `decisions_dropped`). */
  droppedTotal: number;
  /** Times moving the journal into the table failed (the store locked or failing); the journal keeps the records. */
  importFailures: number;
  /** Why records are being lost right now, or null. Readiness is false while this is set. */
  problem: string | null;
}

/** Why a record was lost: the journal refused the append, a journal line was half-written, the in-memory buffer was full. */
export type DropCause = "journal_write_failed" | "unreadable_journal_line" | "buffer_full";

export interface DecisionLogOptions {
  /**
   * The journal file records are appended to before the decision is
   * answered (see `journalPathFor`); null keeps them in memory only, for
   * in-memory stores.
   */
  journal?: string | null;
  /** Without a journal: most records held before new ones are dropped (and counted). */
  maxBuffered?: number;
  flushIntervalMs?: number;
  /** Consulted and told like RevisionWriter's: while it refuses (the store locked or lost), the journal keeps the records. */
  guard?: WriteGuard;
  log?: (message: string) => void;
}

/** The journal of this process for the database at `dbPath`: `<db>.decisions-<pid>.journal`, or null for `:memory:`. */
export function journalPathFor(dbPath: string, pid = process.pid): string | null {
  return dbPath === "" || dbPath === ":memory:" ? null : `${dbPath}.decisions-${pid}.journal`;
}

/**
 * The decision log. Its guarantee (docs/decisions.md, ADR 29): every
 * decision a caller received is in the log, or is counted as dropped in the
 * store; a SIGKILL loses neither.
 *
 * record() appends the decision to this process's journal file with one
 * write(2) before the answer leaves: a plain append, which no SQLite lock can
 * hold up and which survives the process being killed (it is in the page
 * cache). A timer moves the journal into the decision_log table in one
 * transaction and truncates it once all of it is there. A start imports the
 * journals that dead processes left behind (a SIGKILLed sidecar, a finished
 * worker) before anything else; import is INSERT OR IGNORE, so a journal
 * imported twice adds nothing. Only a journal that cannot be written (disk
 * full, I/O error) loses records: they are counted, the count is added to
 * `meta.decisions_dropped` with the next import, and readiness is false until
 * an append succeeds again.
 */
export class DecisionLog {
  private readonly insert;
  private readonly addDropped;
  private readonly readDropped;
  private readonly fd: number | null;
  /** Bytes of the journal already in the table. */
  private imported = 0;
  private memory: DecisionRecord[] = [];
  /** Lines taken inside together(), written in one append at its end. */
  private held: string[] | null = null;
  /** A failed append may have left half a line; the next one starts on a fresh line. */
  private freshLine = false;
  private droppedUnsaved = 0;
  /** Journals of stopped processes not imported yet. */
  private orphans: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly statsValue = { pending: 0, written: 0, dropped: 0, importFailures: 0 };
  private readonly droppedBy: Record<DropCause, number> = { journal_write_failed: 0, unreadable_journal_line: 0, buffer_full: 0 };
  private problemValue: string | null = null;
  private importFailing = false;
  private readonly written: ((records: readonly DecisionRecord[]) => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly options: DecisionLogOptions = {},
  ) {
    const insert = db.prepare(
      `INSERT OR IGNORE INTO decision_log (decision_id, at, tenant_id, actor_id, actor_type, action, resource_type, resource_id,
         resource_tenant_id, allow, reasons, policy_revision, store_revision, request_id, source, impersonation, chain_hash)
       VALUES (@decision_id, @at, @tenant_id, @actor_id, @actor_type, @action, @resource_type, @resource_id,
         @resource_tenant_id, @allow, @reasons, @policy_revision, @store_revision, @request_id, @source, @impersonation, @chain_hash)`,
    );
    // Each inserted row extends the hash chain (ADR 66); a duplicate that
    // INSERT OR IGNORE skips (a journal imported twice) does not.
    this.insert = (r: DecisionRecord, chain: ChainHead) => {
      const row = decisionRow(r);
      const hash = chain.next(row);
      if (insert.run({ ...row, chain_hash: hash }).changes > 0) chain.commit(hash);
    };
    this.addDropped = db.prepare(
      `INSERT INTO meta (key, value) VALUES ('decisions_dropped', ?) ON CONFLICT (key) DO UPDATE SET value = value + excluded.value`,
    );
    this.readDropped = db.prepare<[], number>("SELECT value FROM meta WHERE key = 'decisions_dropped'").pluck();
    const journal = options.journal ?? null;
    if (journal) {
      this.orphans = this.findOrphans(journal);
      this.importOrphans();
      if (this.orphans.length > 0) this.schedule();
    }
    this.fd = journal ? openSync(journal, "a+", 0o600) : null;
  }

  /** Takes one decision: in the journal when this returns (or counted as dropped). */
  record(record: DecisionRecord): void {
    if (this.fd === null) return this.keepInMemory(record);
    const line = `${JSON.stringify(record)}\n`;
    if (this.held) this.held.push(line);
    else this.append(line, 1);
  }

  /** Runs `work` and appends every record it took in one write (a BatchCheck's items). */
  together<T>(work: () => T): T {
    if (this.held || this.fd === null) return work();
    this.held = [];
    try {
      return work();
    } finally {
      const lines = this.held;
      this.held = null;
      if (lines.length > 0) this.append(lines.join(""), lines.length);
    }
  }

  /** Told the records each time some reach the table (the decision-log sinks, ADR 71); never called for a record the table does not hold. */
  onWritten(listener: (records: readonly DecisionRecord[]) => void): void {
    this.written.push(listener);
  }

  /** Moves everything taken so far into the table now. Called by the timer and on shutdown. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.orphans.length > 0) this.importOrphans();
    if (this.fd === null) this.flushMemory();
    else this.importJournal();
    if (this.statsValue.pending > 0 || this.droppedUnsaved > 0 || this.orphans.length > 0) this.schedule();
  }

  /** Flushes and closes the journal (removed once empty). */
  close(): void {
    this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.fd === null) return;
    const empty = fstatSync(this.fd).size === 0;
    closeSync(this.fd);
    if (empty && this.options.journal) rmSync(this.options.journal, { force: true });
  }

  get stats(): Readonly<DecisionLogStats> {
    let droppedTotal = this.droppedUnsaved;
    try {
      droppedTotal += this.readDropped.get() ?? 0;
    } catch {
      // The store is failing; health says so through the store field.
    }
    return { ...this.statsValue, droppedBy: { ...this.droppedBy }, droppedTotal, problem: this.problemValue };
  }

  private append(text: string, count: number): void {
    try {
      const bytes = Buffer.from(this.freshLine ? `\n${text}` : text);
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(this.fd!, bytes, offset);
      this.freshLine = false;
      this.statsValue.pending += count;
      if (this.problemValue !== null) this.options.log?.("decision journal: appends work again");
      this.problemValue = null;
    } catch (error) {
      this.freshLine = true;
      this.drop(count, "journal_write_failed", `the decision journal cannot be written: ${(error as Error).message}`);
    }
    this.schedule();
  }

  private drop(count: number, cause: DropCause, problem: string): void {
    this.statsValue.dropped += count;
    this.droppedBy[cause] += count;
    this.droppedUnsaved += count;
    if (this.problemValue === null) this.options.log?.(`decision log: dropping records: ${problem}`);
    this.problemValue = problem;
  }

  private schedule(): void {
    this.timer ??= setTimeout(() => this.flush(), this.importFailing ? 1_000 : (this.options.flushIntervalMs ?? 100));
  }

  private importJournal(): void {
    const size = fstatSync(this.fd!).size;
    if (size === this.imported && this.droppedUnsaved === 0) return;
    const chunk = Buffer.alloc(size - this.imported);
    readSync(this.fd!, chunk, 0, chunk.length, this.imported);
    const end = chunk.lastIndexOf(0x0a) + 1; // whole lines only
    const { records, unreadable } = parseJournal(chunk.subarray(0, end).toString("utf8"));
    if (this.writeTable(records, unreadable)) {
      this.imported += end;
      this.statsValue.pending = Math.max(0, this.statsValue.pending - records.length - unreadable);
      // Everything is in the table: start the journal again, so it stays small.
      if (end > 0 && this.imported === size) {
        ftruncateSync(this.fd!, 0);
        this.imported = 0;
      }
    }
  }

  /** One transaction: the records, and the drops not yet counted in the store. */
  private writeTable(records: DecisionRecord[], unreadable: number): boolean {
    const dropped = this.droppedUnsaved + unreadable;
    const guard = this.options.guard;
    try {
      guard?.require();
      this.db.transaction(() => {
        const chain = new ChainHead(this.db, "decision_log");
        for (const r of records) this.insert(r, chain);
        if (dropped > 0) this.addDropped.run(dropped);
      }).immediate();
      guard?.writeSucceeded();
    } catch (error) {
      guard?.writeFailed(error);
      this.statsValue.importFailures++;
      if (!this.importFailing) this.options.log?.(`decision log: the journal stays on disk until the table can be written: ${(error as Error).message}`);
      this.importFailing = true;
      return false;
    }
    if (this.importFailing) this.options.log?.("decision log: the journal is being written to the table again");
    this.importFailing = false;
    this.statsValue.written += records.length;
    this.statsValue.dropped += unreadable;
    this.droppedBy.unreadable_journal_line += unreadable;
    this.droppedUnsaved = 0;
    if (records.length > 0) {
      for (const listener of this.written) {
        try {
          listener(records);
        } catch (error) {
          this.options.log?.(`decision log: a sink failed: ${(error as Error).message}`);
        }
      }
    }
    return true;
  }

  /**
   * Finds the journals of processes that are gone (and one of this pid from
   * an earlier life); another live process's journal is its own. They are
   * imported now and, if the table cannot be written yet, at the next flush.
   */
  private findOrphans(journal: string): string[] {
    const dir = dirname(journal);
    const prefix = basename(journal).replace(/-\d+\.journal$/, "-");
    return readdirSync(dir)
      .filter((name) => {
        const pid = name.startsWith(prefix) && name.endsWith(".journal") ? Number(name.slice(prefix.length, -".journal".length)) : NaN;
        return Number.isInteger(pid) && (pid === process.pid || !processAlive(pid)) && isRegularFile(join(dir, name));
      })
      .map((name) => join(dir, name));
  }

  private importOrphans(): void {
    this.orphans = this.orphans.filter((path) => {
      let text;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        return false; // another process imported and removed it
      }
      const { records, unreadable } = parseJournal(text);
      if (!this.writeTable(records, unreadable)) return true;
      rmSync(path, { force: true });
      if (records.length + unreadable > 0) {
        this.options.log?.(`decision log: imported ${records.length} records a stopped process left in ${basename(path)}${unreadable ? ` (${unreadable} unreadable, counted as dropped)` : ""}`);
      }
      return false;
    });
  }

  private keepInMemory(record: DecisionRecord): void {
    if (this.memory.length >= (this.options.maxBuffered ?? 10_000)) {
      this.drop(1, "buffer_full", "the in-memory decision buffer is full");
      return;
    }
    this.memory.push(record);
    this.statsValue.pending++;
    this.schedule();
  }

  private flushMemory(): void {
    const batch = this.memory;
    if (batch.length === 0 && this.droppedUnsaved === 0) return;
    if (this.writeTable(batch, 0)) {
      this.memory = [];
      this.statsValue.pending -= batch.length;
    }
  }
}

/** Parses journal text; a line that is not a record (half-written by a failed append) is counted, not fatal. */
function parseJournal(text: string): { records: DecisionRecord[]; unreadable: number } {
  const records: DecisionRecord[] = [];
  let unreadable = 0;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      const record = JSON.parse(line) as DecisionRecord;
      if (typeof record?.decisionId !== "string") throw new Error("not a record");
      records.push(record);
    } catch {
      unreadable++;
    }
  }
  return { records, unreadable };
}

function isRegularFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Whether a process with this pid runs (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A record as the decision_log row stores it (the values its chain hash covers). */
function decisionRow(r: DecisionRecord): Record<string, string | number> {
  return {
    decision_id: r.decisionId, at: r.at, tenant_id: r.tenantId, actor_id: r.actorId, actor_type: r.actorType, action: r.action,
    resource_type: r.resourceType, resource_id: r.resourceId, resource_tenant_id: r.resourceTenantId, allow: r.allow ? 1 : 0,
    reasons: JSON.stringify(r.reasons), policy_revision: r.policyRevision, store_revision: r.storeRevision, request_id: r.requestId,
    source: r.source, impersonation: impersonationColumn(r.impersonation),
  };
}

/** "" when nobody impersonated, else the session's ids as JSON (staff_role and reason stay in admin_audit). */
function impersonationColumn(i: DecisionRecord["impersonation"]): string {
  return i ? JSON.stringify({ session_id: i.session_id, staff_id: i.staff_id, as_actor_id: i.as_actor_id }) : "";
}
