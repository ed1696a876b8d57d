import { closeSync, fstatSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Db } from "../store/database.js";
import { AUDIT_CHAINS, ChainHead } from "./audit-chain.js";
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
  /**
   * With a journal: most records kept in memory for the next flush (ADR 80);
   * past it the flush reads the journal back instead, until it is emptied.
   */
  maxTail?: number;
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
 * transaction and truncates it once all of it is there. The records appended
 * since the last import are also kept in memory (the tail, ADR 80), and the
 * timer inserts those rather than reading the journal back and parsing it;
 * it reads the journal whenever the tail does not describe all of its
 * unimported bytes (a failed append, a journal not empty at start, more
 * records than `maxTail` while the table could not be written). A start imports the
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
  /** Lines taken inside together(), written in one append at its end, and their records. */
  private held: string[] | null = null;
  private heldRecords: DecisionRecord[] = [];
  /**
   * The records in the journal's bytes from `imported` on, in order, as
   * record() took them, and how many bytes they are (ADR 80); null while
   * those bytes may hold something else: the flush then reads the journal.
   */
  private tail: DecisionRecord[] | null = null;
  private tailBytes = 0;
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
    const columns = AUDIT_CHAINS.decision_log;
    const insert = db.prepare(
      `INSERT OR IGNORE INTO decision_log (${columns.join(", ")}, chain_hash) VALUES (${columns.map(() => "?").join(", ")}, ?)`,
    );
    // Each inserted row extends the hash chain (ADR 66); a duplicate that
    // INSERT OR IGNORE skips (a journal imported twice) does not. The values
    // are bound in the chain's column order, the array the hash covers.
    this.insert = (r: DecisionRecord, chain: ChainHead) => {
      const values = decisionValues(r);
      const hash = chain.nextOf(values);
      values.push(hash);
      if (insert.run(values).changes > 0) chain.commit(hash);
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
    // A journal of this pid's earlier life that could not be imported yet is read back, not described by a tail.
    if (this.fd !== null && fstatSync(this.fd).size === 0) this.tail = [];
  }

  /** Takes one decision: in the journal when this returns (or counted as dropped). */
  record(record: DecisionRecord): void {
    if (this.fd === null) return this.keepInMemory(record);
    const line = `${JSON.stringify(record)}\n`;
    if (this.held) {
      this.held.push(line);
      this.heldRecords.push(record);
    } else this.append(line, [record]);
  }

  /** Runs `work` and appends every record it took in one write (a BatchCheck's items). */
  together<T>(work: () => T): T {
    if (this.held || this.fd === null) return work();
    this.held = [];
    this.heldRecords = [];
    try {
      return work();
    } finally {
      const lines = this.held;
      const records = this.heldRecords;
      this.held = null;
      this.heldRecords = [];
      if (lines.length > 0) this.append(lines.length === 1 ? lines[0]! : lines.join(""), records);
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

  private append(text: string, records: DecisionRecord[]): void {
    const count = records.length;
    try {
      const bytes = Buffer.from(this.freshLine ? `\n${text}` : text);
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(this.fd!, bytes, offset);
      this.freshLine = false;
      this.statsValue.pending += count;
      this.keepTail(records, bytes.length);
      if (this.problemValue !== null) this.options.log?.("decision journal: appends work again");
      this.problemValue = null;
    } catch (error) {
      this.freshLine = true;
      this.tail = null; // the journal may now hold part of these lines, which no tail describes
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

  /** Keeps appended records for the next flush while the tail still describes the journal and stays within `maxTail`. */
  private keepTail(records: DecisionRecord[], bytes: number): void {
    if (this.tail === null) return;
    if (this.tail.length + records.length > (this.options.maxTail ?? 10_000)) {
      this.tail = null;
      return;
    }
    for (const record of records) this.tail.push(record);
    this.tailBytes += bytes;
  }

  private importJournal(): void {
    const size = fstatSync(this.fd!).size;
    if (size === this.imported && this.droppedUnsaved === 0) return;
    if (this.tail !== null && size - this.imported === this.tailBytes) return this.importTail();
    this.tail = null;
    const chunk = Buffer.alloc(size - this.imported);
    readSync(this.fd!, chunk, 0, chunk.length, this.imported);
    const end = chunk.lastIndexOf(0x0a) + 1; // whole lines only
    const { records, unreadable } = parseJournal(chunk.subarray(0, end).toString("utf8"));
    if (this.writeTable(records, unreadable)) {
      this.imported += end;
      this.statsValue.pending = Math.max(0, this.statsValue.pending - records.length - unreadable);
      // Everything is in the table: start the journal again, so it stays small.
      if (end > 0 && this.imported === size) this.truncateIfImported();
    }
  }

  /** importJournal() without reading the journal: the tail is exactly its unimported bytes. */
  private importTail(): void {
    const records = this.tail!;
    const bytes = this.tailBytes;
    this.tail = [];
    this.tailBytes = 0;
    if (!this.writeTable(records, 0)) {
      // Still in the journal; the next flush tries them again (with whatever was appended meanwhile).
      if (this.tail !== null) {
        this.tail = records.concat(this.tail);
        this.tailBytes += bytes;
      }
      return;
    }
    this.imported += bytes;
    this.statsValue.pending = Math.max(0, this.statsValue.pending - records.length);
    if (bytes > 0) this.truncateIfImported();
  }

  /** Empties the journal once all of it is in the table (nothing appended since it was read), so it stays small. */
  private truncateIfImported(): void {
    if (this.imported !== fstatSync(this.fd!).size) return;
    ftruncateSync(this.fd!, 0);
    this.imported = 0;
    this.tail = [];
    this.tailBytes = 0;
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

/**
 * A record as the decision_log row stores it, in the chain's column order
 * (AUDIT_CHAINS.decision_log): the values its chain hash covers, as
 * chainValues() gives them from the row (a missing value is null).
 */
function decisionValues(r: DecisionRecord): (string | number | null)[] {
  return [
    r.decisionId ?? null, r.at ?? null, r.tenantId ?? null, r.actorId ?? null, r.actorType ?? null, r.action ?? null,
    r.resourceType ?? null, r.resourceId ?? null, r.resourceTenantId ?? null, r.allow ? 1 : 0, JSON.stringify(r.reasons) ?? null,
    r.policyRevision ?? null, r.storeRevision ?? null, r.requestId ?? null, r.source ?? null, impersonationColumn(r.impersonation),
  ];
}

/** "" when nobody impersonated, else the session's ids as JSON (staff_role and reason stay in admin_audit). */
function impersonationColumn(i: DecisionRecord["impersonation"]): string {
  return i ? JSON.stringify({ session_id: i.session_id, staff_id: i.staff_id, as_actor_id: i.as_actor_id }) : "";
}
