import { closeSync, openSync, writeSync } from "node:fs";
import { gzipSync } from "node:zlib";
import type { DecisionSinkConfig } from "../config.js";
import { decisionEvent, type DecisionEvent } from "./decision-event.js";
import type { DecisionRecord } from "./decision-log.js";

/**
 * Where decisions go besides the decision_log table (ADR 71). The table is
 * the durable, hash-chained record; a sink gets a record once it is in the
 * table, so a sink that is slow, full or down never holds up a Check, never
 * loses a record from the table, and counts what it could not deliver.
 */
export interface DecisionSink {
  readonly name: string;
  send(records: readonly DecisionRecord[]): void;
  readonly stats: SinkStats;
  /** Delivers what it holds, within a deadline; then stops. */
  close(deadlineMs?: number): Promise<void>;
}

export interface SinkStats {
  sent: number;
  /** Events held, not yet delivered. */
  buffered: number;
  dropped: Record<SinkDropCause, number>;
}

/**
 * buffer_full: the oldest were dropped to make room; rejected: the endpoint refused a batch for good
 * (4xx); failed: a file write failed; shutdown: still held when the process stopped (the table has them).
 */
export type SinkDropCause = "buffer_full" | "rejected" | "failed" | "shutdown";

export interface EventShape {
  labels: Record<string, string>;
  masks: readonly string[];
}

const emptyStats = (): SinkStats => ({ sent: 0, buffered: 0, dropped: { buffer_full: 0, rejected: 0, failed: 0, shutdown: 0 } });

/** JSON lines, one event per line, to a file (appended, 0600) or to stdout (`-`). */
export class JsonLinesSink implements DecisionSink {
  readonly name = "file";
  readonly stats = emptyStats();
  private readonly fd: number;

  constructor(
    private readonly target: string,
    private readonly shape: EventShape,
  ) {
    this.fd = target === "-" ? 1 : openSync(target, "a", 0o600);
  }

  send(records: readonly DecisionRecord[]): void {
    if (records.length === 0) return;
    const text = records.map((r) => `${JSON.stringify(decisionEvent(r, this.shape.labels, this.shape.masks))}\n`).join("");
    try {
      const bytes = Buffer.from(text);
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(this.fd, bytes, offset);
      this.stats.sent += records.length;
    } catch {
      this.stats.dropped.failed += records.length;
    }
  }

  async close(): Promise<void> {
    if (this.target !== "-") closeSync(this.fd);
  }
}

export interface HttpSinkOptions {
  url: string;
  /** Most events held while the endpoint is slow or down; past it the oldest are dropped (as OPA's plugin does). */
  maxBuffered: number;
  /** Most events in one POST. */
  maxBatch?: number;
  /** How often a partial batch is sent. */
  flushIntervalMs?: number;
  /** First and longest wait between attempts after a failure (doubled each time). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** One POST's deadline. */
  timeoutMs?: number;
  log?: (message: string) => void;
}

/**
 * POSTs batches of events as a gzip-compressed JSON array (`Content-Encoding:
 * gzip`), the body OPA's decision-log plugin sends to `/logs`. A batch is
 * retried with doubling backoff on a network error, a timeout, 429 or 5xx,
 * and dropped (counted `rejected`) on any other 4xx, which no retry can fix.
 * While it waits, new events queue up to `maxBuffered`; beyond that the
 * oldest go first (counted `buffer_full`), so after an outage the newest are
 * the ones delivered.
 */
export class HttpSink implements DecisionSink {
  readonly name = "http";
  readonly stats = emptyStats();
  private queue: DecisionEvent[] = [];
  /** Position (in all events ever queued) of queue[0]: a batch knows which events it covered even if the oldest were dropped meanwhile. */
  private head = 0;
  private inFlight: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private backoffMs = 0;
  private closed = false;
  private failing = false;
  /** Aborts the POST in flight when close() runs out of time. */
  private readonly aborter = new AbortController();

  constructor(
    private readonly options: HttpSinkOptions,
    private readonly shape: EventShape,
  ) {}

  send(records: readonly DecisionRecord[]): void {
    if (this.closed || records.length === 0) return;
    for (const r of records) this.queue.push(decisionEvent(r, this.shape.labels, this.shape.masks));
    const over = this.queue.length - this.options.maxBuffered;
    if (over > 0) {
      this.queue.splice(0, over);
      this.head += over;
      this.stats.dropped.buffer_full += over;
    }
    this.stats.buffered = this.queue.length;
    if (this.queue.length >= this.batchSize() && this.backoffMs === 0) this.deliverSoon(0);
    else this.deliverSoon(this.backoffMs || (this.options.flushIntervalMs ?? 1_000));
  }

  /**
   * Delivers what it holds until the deadline, then aborts the POST in flight
   * and counts what is left as dropped (`shutdown`), with a log line: the
   * table holds those records, no sink will get them.
   */
  async close(deadlineMs = 2_000): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
    let late = false;
    void deadline.then(() => (late = true));
    while (!late && (this.queue.length > 0 || this.inFlight)) {
      await Promise.race([this.inFlight ?? this.post(), deadline]);
      if (this.failing) break; // the endpoint is down: retrying now would only wait out the deadline
    }
    this.closed = true;
    this.aborter.abort();
    await this.inFlight?.catch(() => undefined);
    const left = this.queue.length;
    if (left > 0) {
      this.stats.dropped.shutdown += left;
      this.queue = [];
      this.stats.buffered = 0;
      this.options.log?.(`decision log sink ${this.options.url}: ${left} events not delivered at shutdown (they are in the decision_log table)`);
    }
  }

  private batchSize(): number {
    return this.options.maxBatch ?? 500;
  }

  private deliverSoon(ms: number): void {
    if (this.timer || this.inFlight) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.post();
    }, ms);
    this.timer.unref();
  }

  private post(): Promise<void> {
    if (this.inFlight || this.queue.length === 0) return this.inFlight ?? Promise.resolve();
    const batch = this.queue.slice(0, this.batchSize());
    this.inFlight = this.attempt(batch, this.head + batch.length).finally(() => {
      this.inFlight = null;
      this.stats.buffered = this.queue.length;
      if (this.queue.length > 0 && !this.closed) this.deliverSoon(this.backoffMs || (this.queue.length >= this.batchSize() ? 0 : (this.options.flushIntervalMs ?? 1_000)));
    });
    return this.inFlight;
  }

  /** Sends one batch; on success or a permanent refusal it leaves the queue, otherwise it stays at its head. */
  private async attempt(batch: DecisionEvent[], end: number): Promise<void> {
    let outcome: "sent" | "rejected" | "retry";
    let why = "";
    try {
      const response = await fetch(this.options.url, {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": "gzip" },
        body: gzipSync(JSON.stringify(batch)),
        signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs ?? 5_000), this.aborter.signal]),
      });
      await response.arrayBuffer().catch(() => undefined);
      outcome = response.ok ? "sent" : response.status === 429 || response.status >= 500 ? "retry" : "rejected";
      why = `HTTP ${response.status}`;
    } catch (error) {
      outcome = "retry";
      why = (error as Error).message;
    }
    // Events dropped as buffer_full meanwhile were the oldest, so part of the batch may be gone already.
    const still = Math.max(0, end - this.head);
    if (outcome === "retry") {
      this.backoffMs = Math.min(this.options.maxBackoffMs ?? 30_000, this.backoffMs === 0 ? (this.options.minBackoffMs ?? 500) : this.backoffMs * 2);
      if (!this.failing) this.options.log?.(`decision log sink ${this.options.url}: ${why}; retrying with backoff, holding up to ${this.options.maxBuffered} events`);
      this.failing = true;
      return;
    }
    this.queue.splice(0, still);
    this.head += still;
    this.backoffMs = 0;
    if (outcome === "sent") this.stats.sent += still;
    else {
      this.stats.dropped.rejected += still;
      this.options.log?.(`decision log sink ${this.options.url}: ${why}; dropped a batch of ${still} events (a 4xx is not retried)`);
    }
    if (this.failing && outcome === "sent") this.options.log?.(`decision log sink ${this.options.url}: delivering again`);
    // The endpoint answered (a delivery or a refusal): it is up.
    this.failing = false;
  }
}

/** The sinks a configuration names, with OPA's labels (`id` of this process, `version` of Bulkhead) on every event. */
export function createDecisionSinks(
  config: DecisionSinkConfig | undefined,
  labels: Record<string, string>,
  log: (message: string) => void,
): DecisionSink[] {
  if (!config) return [];
  const shape = { labels, masks: config.masks };
  const sinks: DecisionSink[] = [];
  if (config.file) sinks.push(new JsonLinesSink(config.file, shape));
  if (config.url) sinks.push(new HttpSink({ url: config.url, maxBuffered: config.maxBuffered, log }, shape));
  return sinks;
}
