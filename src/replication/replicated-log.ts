import { randomUUID } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import {
  DeliverPolicy, jetstream, JetStreamApiError, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg,
} from "@nats-io/jetstream";
import type { Clock } from "../clock.js";
import { unbridgedGap } from "./snapshots.js";
import type { ReplicationConfig } from "../config.js";
import { BulkheadError } from "../errors.js";
import type { CommandOptions, CommandWriter } from "../store/command-writer.js";
import type { Committed, RevisionWriter } from "../store/revision-writer.js";
import { encodeCommand, isCommandOutcome, UnappliableCommand, type CommandKind, type CommandRegistry } from "../store/store-command.js";

/**
 * JetStream's answers to a publish whose expectation is stale: 10071 names
 * the sequence it found; 10164 is what a clustered stream's leader answers
 * while an earlier append on the subject is still being replicated.
 */
const WRONG_LAST_SEQUENCE = new Set([10071, 10164]);
/**
 * JetStream's answer while an append under the same message id (another
 * sidecar's, a Stripe retry, one period's sweep) is still being stored: the
 * same publish asked again shortly gets the stored entry as a duplicate.
 */
const DUPLICATE_IN_PROCESS = 10158;
/** How long one append waits for the stream's acknowledgement. */
const PUBLISH_TIMEOUT_MS = 2_000;
/** How long an acknowledged append waits for this sidecar to apply it. */
const APPLY_TIMEOUT_MS = 10_000;
/** How long a keyed command keeps retrying conflicts before it gives up (never with allow). */
const CONFLICT_BUDGET_MS = 10_000;
/** Room left in NATS's max_payload for an entry's headers (message id, expected sequences). */
const HEADER_ROOM_BYTES = 1024;
/** How often a catch-up reports its progress on stderr. */
const PROGRESS_EVERY_MS = 1_000;
/**
 * How often the stream's last sequence is read for the lag metrics (ADR 64):
 * one stream info a second per sidecar, never one per scrape.
 */
const STREAM_POSITION_EVERY_MS = 1_000;
/** Marks of first-heard stream positions kept for lag in seconds (see heardMarks). */
const MAX_HEARD_MARKS = 1_000;

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export interface ReplicatedLogDeps {
  writer: RevisionWriter;
  registry: CommandRegistry;
  clock: Clock;
  log: (message: string) => void;
  /** The revision the local file has applied through (its last stream sequence). */
  appliedRevision: number;
  /** keySecretFingerprint of BULKHEAD_KEY_SECRET: the stream records the first one, and refuses any other (ADR 77). */
  keySecretFingerprint: string;
}

/**
 * Replicated mode (ADRs 42-44): the JetStream stream is the store, the
 * local SQLite file a view of it. `run` appends a command and answers once
 * this sidecar has applied it; a consumer applies every entry in stream
 * order as revision = stream sequence. Nothing is written locally except
 * by applying the log, so a write NATS did not store left no trace here.
 */
export class ReplicatedLog implements CommandWriter {
  private applied: number;
  /** Appends of this sidecar waiting for their entry to be applied, by message id (one id may be sent twice: a Stripe retry). */
  private readonly pending = new Map<string, Set<(outcome: Outcome) => void>>();
  /** The newest applied sequence per subject: what a keyed append expects as last. */
  private readonly subjectSeq = new Map<string, number>();
  private readonly appliedWaiters = new Set<{ seq: number; wake: () => void }>();
  /** Keyed commands of this sidecar go one at a time per key, so its own calls never conflict with each other. */
  private readonly keyQueues = new Map<string, Promise<unknown>>();
  /** performance.now() when NATS was lost (null: connected). Staleness is elapsed time, not the calendar. */
  private lostAt: number | null = null;
  private halted: { reason: string; at: number } | null = null;
  private stopped = false;
  private consumerDone: Promise<void> = Promise.resolve();
  private stopConsumer: () => Promise<void> = async () => {};
  /** The stream's last sequence when this sidecar started: until it has applied that far it serves nothing (ADR 64). */
  private catchUpTarget = 0;
  private caughtUp: Promise<void> = Promise.resolve();
  private readonly readinessListeners: (() => void)[] = [];
  /**
   * The newest stream sequence this sidecar has heard of: a stream info read
   * every STREAM_POSITION_EVERY_MS, its own acks, deliveries' pending counts.
   * Deliveries alone are not enough: an entry's pending count leaves out the
   * entries delivered after it, which sit unapplied in the client's buffer
   * or the socket while this sidecar is busy (issue 13).
   */
  private streamLast = 0;
  private stopPositionWatch: () => void = () => {};
  /**
   * When this sidecar first heard of stream sequences it has not applied:
   * each raise of streamLast, oldest first, on the monotonic clock. The
   * first mark past the applied sequence dates the oldest unapplied entry
   * (lag in seconds) without comparing NATS's clock with this host's.
   */
  private heardMarks: { seq: number; at: number }[] = [];
  /** Set while applying is held (`holdApplying`): the applier waits on it before the next entry. */
  private held: { until: Promise<void>; release: () => void } | null = null;
  private conflicts = 0;

  private constructor(
    private readonly config: ReplicationConfig,
    private readonly deps: ReplicatedLogDeps,
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {
    this.applied = deps.appliedRevision;
  }

  /** Connects, makes sure the stream exists, and starts applying it from the local file's revision. */
  static async open(config: ReplicationConfig, deps: ReplicatedLogDeps): Promise<ReplicatedLog> {
    const nc = await connect({ servers: config.natsServers, reconnectTimeWait: 250, maxReconnectAttempts: -1, name: "bulkhead" }).catch((error: unknown) => {
      throw new BulkheadError("REPLICATION_UNAVAILABLE", `cannot reach NATS at ${config.natsServers.join(",")}: ${(error as Error).message}`);
    });
    try {
      const jsm = await ensureStream(nc, config, deps.keySecretFingerprint);
      const log = new ReplicatedLog(config, deps, nc, jetstream(nc), jsm);
      await log.readCatchUpTarget();
      log.watchConnection();
      log.watchStreamPosition();
      await log.startConsumer();
      log.reportCatchUp();
      return log;
    } catch (error) {
      await nc.close().catch(() => {});
      throw error;
    }
  }

  /** The subject space of this stream: every subject under `<stream>.`. */
  private subject(suffix: string): string {
    return `${this.config.stream}.${suffix}`;
  }

  /** The NATS connection, for snapshots (ADR 73), which live beside the stream. */
  get connection(): NatsConnection {
    return this.nc;
  }

  get revision(): number {
    return this.applied;
  }

  /** Resolves once this sidecar has applied everything the stream held when asked; answers that sequence. */
  async catchUp(): Promise<number> {
    const target = (await this.jsm.streams.info(this.config.stream)).state.last_seq;
    this.heardOf(target);
    await this.untilApplied(target, Number.POSITIVE_INFINITY);
    return target;
  }

  /**
   * Ready: caught up with the stream as it was at start, and applying. A
   * load balancer reading /readyz or gRPC health sends nothing before that,
   * and a caller that does gets UNAVAILABLE, never an answer from old state.
   */
  get readiness(): { ready: boolean; applied: number; target: number; problem: string | null } {
    const problem = this.halted
      ? `stopped applying the change log (${this.halted.reason})`
      : this.applied < this.catchUpTarget ? `catching up on the change log: applied ${this.applied} of ${this.catchUpTarget}` : null;
    return { ready: problem === null, applied: this.applied, target: this.catchUpTarget, problem };
  }

  /**
   * For the metrics endpoint (ADR 64), from memory: no NATS call per scrape.
   * Lag in entries is the stream's last sequence as last heard (at most a
   * second old, see watchStreamPosition) minus the applied one. Lag in
   * seconds is 0 when caught up; else how long ago, on this host's monotonic
   * clock, this sidecar first heard of the oldest entry it has not applied:
   * up to a second short of that entry's age, never a comparison of two
   * machines' clocks (a skewed or shifted clock would show days of lag).
   */
  get stats(): { applied: number; lagEntries: number; lagSeconds: number; conflicts: number; catchUpTarget: number; ready: boolean } {
    const lagEntries = Math.max(0, this.streamLast - this.applied);
    const mark = lagEntries === 0 ? undefined : this.heardMarks.find((m) => m.seq > this.applied);
    const lagSeconds = mark === undefined ? 0 : Math.max(0, (performance.now() - mark.at) / 1000);
    return { applied: this.applied, lagEntries, lagSeconds, conflicts: this.conflicts, catchUpTarget: this.catchUpTarget, ready: this.readiness.ready };
  }

  /** Resolves once the start-up catch-up is done. */
  whenCaughtUp(): Promise<void> {
    return this.caughtUp;
  }

  /** Hears when `readiness` changes (caught up, or the applier stopped). */
  onReadinessChange(listener: () => void): void {
    this.readinessListeners.push(listener);
  }

  /** The stream's last sequence now is what this sidecar must apply before it is ready. */
  private async readCatchUpTarget(): Promise<void> {
    const { state } = await this.jsm.streams.info(this.config.stream);
    const target = state.last_seq;
    // Entries before first_seq are gone (an import, a purge): a file behind them cannot catch up by consuming.
    if (state.messages > 0 && state.first_seq > this.applied + 1) throw unbridgedGap(this.config.stream, state.first_seq, this.applied);
    if (state.messages === 0 && target > this.applied) throw unbridgedGap(this.config.stream, target + 1, this.applied);
    if (target < this.applied) {
      // Revisions here are stream sequences: a file ahead of the stream was written by something else.
      throw new BulkheadError("REPLICATION_UNAVAILABLE", `the database is at revision ${this.applied} but stream '${this.config.stream}' ends at ${target}: it is not a view of this stream (start from an empty database)`);
    }
    this.catchUpTarget = target;
    this.streamLast = target;
  }

  /** Progress of a catch-up on stderr, once a second, so an operator sees a long one move. */
  private reportCatchUp(): void {
    const { stream } = this.config;
    const from = this.applied;
    const target = this.catchUpTarget;
    if (target <= from) return;
    const started = performance.now();
    this.deps.log(`catching up on stream ${stream}: applied ${from} of ${target}`);
    const timer = setInterval(() => {
      const done = this.applied - from;
      const rate = done / ((performance.now() - started) / 1000);
      this.deps.log(`catching up on stream ${stream}: applied ${this.applied} of ${target} (${Math.floor((100 * done) / (target - from))}%, ${Math.round(rate)} entries/s)`);
    }, PROGRESS_EVERY_MS).unref();
    this.caughtUp = this.untilApplied(target, Number.POSITIVE_INFINITY).then(() => {
      clearInterval(timer);
      this.deps.log(`caught up on stream ${stream} at revision ${this.applied}: ${this.applied - from} entries in ${Math.round(performance.now() - started)} ms; ready`);
      for (const listener of this.readinessListeners) listener();
    });
  }

  /** Waits, within the apply timeout, until this sidecar has applied what the stream holds now. */
  async syncWithLog(): Promise<void> {
    this.requireWritable();
    const info = await this.jsm.streams.info(this.config.stream).catch((error: unknown) => {
      throw new BulkheadError("REPLICATION_UNAVAILABLE", `cannot read the change log's position: ${(error as Error).message}`);
    });
    this.heardOf(info.state.last_seq);
    await this.untilApplied(info.state.last_seq, performance.now() + APPLY_TIMEOUT_MS);
  }

  /**
   * Throws unless local state may still be served: NATS reachable, or lost
   * for at most the staleness bound; and the applier not stopped at an entry
   * it cannot apply. Runs before every decision (through the change tracker).
   */
  requireFresh(): void {
    const catchingUp = this.applied < this.catchUpTarget;
    if (catchingUp) {
      throw new BulkheadError("REPLICATION_UNAVAILABLE", `this sidecar is catching up on the change log (applied ${this.applied} of ${this.catchUpTarget}); it answers once it has`);
    }
    const since = this.halted?.at ?? this.lostAt;
    if (since === null) return;
    const elapsed = performance.now() - since;
    if (elapsed <= this.config.stalenessMs) return;
    const why = this.halted ? `this sidecar stopped applying the change log (${this.halted.reason})` : "NATS is unreachable";
    throw new BulkheadError(
      "REPLICATION_UNAVAILABLE",
      `${why} for ${Math.round(elapsed)} ms, past the ${this.config.stalenessMs} ms staleness bound: local state may be stale at revision ${this.applied}`,
    );
  }

  /**
   * Appends the demo seed (or any first command) only to an empty stream:
   * the first sidecar of a deployment seeds, the others find it taken and join.
   */
  async runIfLogEmpty<B, R>(kind: CommandKind<B, R>, body: B): Promise<Committed<R> | undefined> {
    if (this.catchUpTarget > 0) return undefined;
    try {
      return await this.append<R>(this.subject("seed"), this.encode(kind, body), { lastSequence: 0 }, randomUUID(), () => undefined as R);
    } catch (error) {
      if (error instanceof Conflict) return undefined;
      throw error;
    }
  }

  async run<B, R>(kind: CommandKind<B, R>, body: B, options: CommandOptions<R> = {}): Promise<Committed<R>> {
    const bytes = this.encode(kind, body);
    if (options.concurrencyKey === undefined) return this.runUnkeyed(kind, bytes, options);
    const key = options.concurrencyKey;
    const previous = this.keyQueues.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => {}).then(() => this.runKeyed(kind, bytes, key, options));
    this.keyQueues.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.keyQueues.get(key) === mine) this.keyQueues.delete(key);
    }
  }

  /**
   * Holds the applier before its next entry until the answered function is
   * called: entries keep arriving and queue, nothing is applied. For tests
   * that need a sidecar behind the stream (the lag metrics); nothing in the
   * sidecar calls it.
   */
  holdApplying(): () => void {
    let resolve!: () => void;
    const until = new Promise<void>((r) => (resolve = r));
    const held = {
      until,
      release: () => {
        if (this.held === held) this.held = null;
        resolve();
      },
    };
    this.held?.release();
    this.held = held;
    return held.release;
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.stopPositionWatch();
    this.held?.release();
    await this.stopConsumer().catch(() => {});
    await this.consumerDone;
    await this.nc.close().catch(() => {});
  }

  /**
   * A command without a key: appended as it is, after `settledLocally` had
   * its say on this sidecar's state. Deciding locally first also means an
   * entry that fails to apply here (not a domain refusal) is never appended
   * for every sidecar to stop at.
   */
  private async runUnkeyed<R>(kind: CommandKind<unknown, R>, bytes: Uint8Array, options: CommandOptions<R>): Promise<Committed<R>> {
    this.requireWritable();
    const { command, body } = this.deps.registry.decode(bytes);
    const again = () => this.deps.writer.simulate((tx) => kind.apply(tx, body), command.at);
    if (options.settledLocally) {
      const answer = again();
      if (options.settledLocally(answer)) return { result: answer, revision: this.applied };
    }
    return this.append<R>(this.subject("cmd"), bytes, {}, options.messageId ?? randomUUID(), again);
  }

  /**
   * A keyed command (a Consume): decided on this sidecar's state first, and
   * appended only with "the last entry on my key is the one I applied". If
   * another sidecar appended on the key meanwhile, JetStream refuses it; this
   * sidecar then applies that entry and decides again. So an entry is only
   * ever appended by a sidecar that saw every earlier entry on its key.
   */
  private async runKeyed<R>(kind: CommandKind<unknown, R>, bytes: Uint8Array, key: string, options: CommandOptions<R>): Promise<Committed<R>> {
    const subject = this.subject(`k.${Buffer.from(key, "utf8").toString("base64url")}`);
    const body = this.deps.registry.decode(bytes).body;
    const at = (JSON.parse(Buffer.from(bytes).toString("utf8")) as { at: number }).at;
    const giveUpAt = performance.now() + CONFLICT_BUDGET_MS;
    for (let attempt = 0; ; attempt++) {
      this.requireWritable();
      const expected = this.subjectSeq.get(subject) ?? 0;
      if (options.settledLocally) {
        const answer = this.deps.writer.simulate((tx) => kind.apply(tx, body), at);
        if (options.settledLocally(answer)) return { result: answer, revision: this.applied };
      }
      try {
        const again = () => this.deps.writer.simulate((tx) => kind.apply(tx, body), at);
        return await this.append<R>(subject, bytes, { lastSubjectSequence: expected }, options.messageId ?? randomUUID(), again);
      } catch (error) {
        if (!(error instanceof Conflict)) throw error;
        this.conflicts++;
        this.deps.log(`conflict on ${key} (attempt ${attempt + 1}); applying the newer entry and deciding again`);
        if (performance.now() > giveUpAt) {
          throw new BulkheadError("REPLICATION_UNAVAILABLE", `${key}: still conflicting with other sidecars after ${CONFLICT_BUDGET_MS} ms; nothing was consumed`);
        }
        await this.untilSubjectPast(subject, expected, giveUpAt);
      }
    }
  }

  private encode<B>(kind: CommandKind<B, unknown>, body: B): Uint8Array {
    const bytes = encodeCommand({ type: kind.type, v: kind.version, at: this.deps.clock.now(), body });
    // What this sidecar could not apply from the log it must not append to it.
    this.deps.registry.decode(bytes);
    // A consuming BatchCheck of many items with large attributes can outgrow one
    // NATS message (ADR 85); asking again cannot help, so it is the request's fault.
    const limit = this.nc.info?.max_payload;
    if (limit !== undefined && bytes.length + HEADER_ROOM_BYTES > limit) {
      throw new BulkheadError("REQUEST_INVALID_ARGUMENT", `this write is ${bytes.length} bytes as a change log entry, over the ${limit - HEADER_ROOM_BYTES} one entry may hold (NATS max_payload); nothing was written: send fewer or smaller items`);
    }
    return bytes;
  }

  /** Refuses at once, before anything is sent, when the write could not be acknowledged. */
  private requireWritable(): void {
    if (this.applied < this.catchUpTarget) {
      throw new BulkheadError("REPLICATION_UNAVAILABLE", `write refused: this sidecar is catching up on the change log (applied ${this.applied} of ${this.catchUpTarget}), and nothing was written`);
    }
    if (this.halted) throw new BulkheadError("REPLICATION_UNAVAILABLE", `write refused: this sidecar stopped applying the change log (${this.halted.reason})`);
    if (this.lostAt !== null || this.nc.isClosed()) {
      throw new BulkheadError("REPLICATION_UNAVAILABLE", "write refused: NATS is unreachable, and nothing was written");
    }
  }

  /**
   * Appends one entry and answers with what applying it here gave, at its
   * sequence. When JetStream reports the message id as a duplicate, the entry
   * stored under it (this sidecar's or another's) is the one that counts:
   * once it is applied here, the answer is `again()`, what the command gives
   * run once more on that state (a Stripe event: "duplicate").
   */
  private async append<R>(
    subject: string, bytes: Uint8Array, expect: { lastSequence?: number; lastSubjectSequence?: number }, msgID: string, again: () => R,
  ): Promise<Committed<R>> {
    this.requireWritable();
    let resolveApplied!: (outcome: Outcome) => void;
    const applied = new Promise<Outcome>((resolve) => (resolveApplied = resolve));
    const waiting = this.pending.get(msgID) ?? new Set();
    waiting.add(resolveApplied);
    this.pending.set(msgID, waiting);
    const forget = () => {
      waiting.delete(resolveApplied);
      if (waiting.size === 0 && this.pending.get(msgID) === waiting) this.pending.delete(msgID);
    };
    let seq: number;
    try {
      const ack = await this.publishOnce(subject, bytes, msgID, expect);
      seq = ack.seq;
      this.heardOf(seq);
      if (ack.duplicate) {
        forget();
        await this.untilApplied(seq, performance.now() + APPLY_TIMEOUT_MS);
        return { result: again(), revision: seq };
      }
    } catch (error) {
      forget();
      if (error instanceof BulkheadError) throw error;
      if (error instanceof JetStreamApiError && WRONG_LAST_SEQUENCE.has(error.code)) throw new Conflict();
      throw new BulkheadError("REPLICATION_UNAVAILABLE", `the change log did not acknowledge the write: ${(error as Error).message}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), APPLY_TIMEOUT_MS)));
    const outcome = await Promise.race([applied, timeout]).finally(() => clearTimeout(timer));
    if (outcome === "timeout") {
      forget();
      throw new BulkheadError("REPLICATION_UNAVAILABLE", `the write was stored as revision ${seq} but this sidecar has not applied it within ${APPLY_TIMEOUT_MS} ms`);
    }
    if (!outcome.ok) throw outcome.error;
    return { result: outcome.value as R, revision: seq };
  }

  /** One publish; asked again while JetStream is still storing an append under the same id. */
  private async publishOnce(subject: string, bytes: Uint8Array, msgID: string, expect: { lastSequence?: number; lastSubjectSequence?: number }) {
    const giveUpAt = performance.now() + PUBLISH_TIMEOUT_MS;
    for (;;) {
      try {
        return await this.js.publish(subject, bytes, { msgID, expect, timeout: PUBLISH_TIMEOUT_MS });
      } catch (error) {
        const inProcess = error instanceof JetStreamApiError && error.code === DUPLICATE_IN_PROCESS;
        if (!inProcess || performance.now() > giveUpAt) throw error;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
  }

  private async startConsumer(): Promise<void> {
    const start = this.applied + 1;
    const consumer = await this.js.consumers.get(this.config.stream, start > 1
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start }
      : { deliver_policy: DeliverPolicy.All });
    // Short pulls: after a reconnect the next pull goes out within 2 s, instead of
    // waiting out the default 30 s one the lost connection was holding.
    const messages = await consumer.consume({ expires: 2_000 });
    this.stopConsumer = async () => void (await messages.close());
    this.consumerDone = (async () => {
      try {
        for await (const message of messages) {
          if (this.held) await this.held.until;
          if (this.stopped) break;
          if (!this.applyEntry(message)) break;
        }
      } catch (error) {
        if (!this.stopped) this.halt(`the consumer failed: ${(error as Error).message}`);
      }
    })();
  }

  /** Applies one entry; false stops the applier (an entry this sidecar cannot apply, or SQLite failed). */
  private applyEntry(message: JsMsg): boolean {
    if (message.seq <= this.applied) return true;
    const msgID = message.headers?.get("Nats-Msg-Id") ?? "";
    let outcome: Outcome;
    try {
      const { command, kind, body } = this.deps.registry.decode(message.data);
      outcome = this.deps.writer.applyAt(message.seq, command.at, (tx) => kind.apply(tx, body), isCommandOutcome).result;
    } catch (error) {
      // Skipping the entry would make this file disagree with every other
      // sidecar for good: stop here, serve the state as of the entry before
      // it until the staleness bound, and say why.
      const what = error instanceof UnappliableCommand ? error.message : `applying it failed: ${(error as Error).message}`;
      this.answerPending(msgID, { ok: false, error: new BulkheadError("REPLICATION_UNAVAILABLE", `revision ${message.seq} was stored but this sidecar cannot apply it: ${what}`) });
      this.halt(`revision ${message.seq}: ${what}`);
      void this.stopConsumer();
      return false;
    }
    this.applied = message.seq;
    this.heardOf(message.seq + message.info.pending);
    while (this.heardMarks.length > 0 && this.heardMarks[0]!.seq <= this.applied) this.heardMarks.shift();
    this.subjectSeq.set(message.subject, message.seq);
    this.answerPending(msgID, outcome);
    for (const waiter of this.appliedWaiters) if (waiter.seq <= this.applied) waiter.wake();
    return true;
  }

  private halt(reason: string): void {
    if (this.halted) return;
    this.halted = { reason, at: performance.now() };
    this.deps.log(`replication stopped: ${reason}`);
    for (const listener of this.readinessListeners) listener();
    // Appends still waiting will not be applied here: answer them now, not at their timeout.
    for (const msgID of [...this.pending.keys()]) {
      this.answerPending(msgID, { ok: false, error: new BulkheadError("REPLICATION_UNAVAILABLE", `the write was stored but this sidecar stopped applying the change log (${reason})`) });
    }
  }

  private answerPending(msgID: string, outcome: Outcome): void {
    const waiting = this.pending.get(msgID);
    if (!waiting) return;
    this.pending.delete(msgID);
    for (const answer of waiting) answer(outcome);
  }

  private untilApplied(seq: number, giveUpAt: number): Promise<void> {
    return this.until(() => this.applied >= seq, seq, giveUpAt);
  }

  /** Waits until an entry after `seq` on `subject` was applied here (the one that won the conflict). */
  private untilSubjectPast(subject: string, seq: number, giveUpAt: number): Promise<void> {
    return this.until(() => (this.subjectSeq.get(subject) ?? 0) > seq, this.applied + 1, giveUpAt);
  }

  private until(done: () => boolean, seq: number, giveUpAt: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        seq,
        wake: () => {
          if (!done()) {
            waiter.seq = this.applied + 1;
            return;
          }
          cleanup();
          resolve();
        },
      };
      const timer = Number.isFinite(giveUpAt)
        ? setTimeout(() => {
            cleanup();
            reject(new BulkheadError("REPLICATION_UNAVAILABLE", `this sidecar did not apply the change log past revision ${this.applied} in time`));
          }, Math.max(0, giveUpAt - performance.now()))
        : undefined;
      const cleanup = () => {
        clearTimeout(timer);
        this.appliedWaiters.delete(waiter);
      };
      this.appliedWaiters.add(waiter);
    });
  }

  private heardOf(seq: number): void {
    if (seq <= this.streamLast) return;
    this.streamLast = seq;
    if (seq <= this.applied) return;
    // Bounded: far behind, the newest mark moves up and keeps its older time (an upper bound for those entries).
    const newest = this.heardMarks.at(-1);
    if (this.heardMarks.length >= MAX_HEARD_MARKS && newest) newest.seq = seq;
    else this.heardMarks.push({ seq, at: performance.now() });
  }

  /**
   * Reads the stream's last sequence once a second, so the lag metrics see
   * entries this sidecar has not been delivered, or has been delivered and
   * not applied yet. A scrape reads what the last answer said; while NATS is
   * lost, or one read is still out, the timer skips.
   */
  private watchStreamPosition(): void {
    let asking = false;
    const look = async () => {
      const { state } = await this.jsm.streams.info(this.config.stream);
      this.heardOf(state.last_seq);
    };
    const timer = setInterval(() => {
      if (asking || this.stopped || this.lostAt !== null) return;
      asking = true;
      look().catch(() => {}).finally(() => (asking = false));
    }, STREAM_POSITION_EVERY_MS);
    timer.unref();
    this.stopPositionWatch = () => clearInterval(timer);
  }

  private watchConnection(): void {
    void (async () => {
      for await (const status of this.nc.status()) {
        if (status.type === "disconnect") {
          this.lostAt ??= performance.now();
          this.deps.log("lost NATS; serving local state for at most the staleness bound, refusing writes");
        } else if (status.type === "reconnect") {
          this.lostAt = null;
          this.deps.log(`reconnected to NATS; applying from revision ${this.applied + 1}`);
        }
      }
    })();
    void this.nc.closed().then(() => {
      this.lostAt ??= performance.now();
    });
  }
}

/** Another sidecar appended first (expected last sequence was stale). */
class Conflict extends Error {
  override readonly name = "Conflict";
}

/** Where the stream's config keeps the key secret's fingerprint: metadata, not an entry, so revisions stay stream sequences. */
export const KEY_SECRET_FINGERPRINT = "bulkhead_key_secret_fingerprint";

/**
 * Creates the stream when it does not exist yet, with this sidecar's key
 * secret fingerprint; a stream made before fingerprints gets one once, the
 * one `claimFingerprint` lets win. A cluster elects its JetStream meta leader
 * shortly after start; until then API requests time out, so this retries for
 * a while before giving up. Exported for the race test.
 */
export async function ensureStream(nc: NatsConnection, config: ReplicationConfig, fingerprint: string): Promise<JetStreamManager> {
  const giveUpAt = performance.now() + 30_000;
  let recorded: string | undefined;
  for (;;) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2000 });
      try {
        const info = await jsm.streams.info(config.stream);
        recorded = info.config.metadata?.[KEY_SECRET_FINGERPRINT];
        if (recorded === undefined) {
          recorded = await claimFingerprint(nc, config, fingerprint);
          // Every sidecar writes the same winner, so these updates cannot disagree.
          await jsm.streams.update(config.stream, { ...info.config, metadata: { ...info.config.metadata, [KEY_SECRET_FINGERPRINT]: recorded } });
        }
      } catch (error) {
        if (!(error instanceof JetStreamApiError) || error.code !== 10059) throw error;
        await jsm.streams.add({
          name: config.stream,
          subjects: [`${config.stream}.>`],
          num_replicas: config.replicas,
          // Appends are never retried under one id after this long.
          duplicate_window: 120_000_000_000,
          metadata: { [KEY_SECRET_FINGERPRINT]: fingerprint },
        });
        recorded = fingerprint;
      }
      if (recorded !== fingerprint) {
        // Outside the retry: waiting cannot make the secrets agree.
        throw new KeySecretMismatch(
          `BULKHEAD_KEY_SECRET differs from the one stream '${config.stream}' was started with: API keys and staff tokens issued on the other sidecars would not verify here; start every sidecar with the same BULKHEAD_KEY_SECRET`,
        );
      }
      return jsm;
    } catch (error) {
      if (error instanceof KeySecretMismatch) throw new BulkheadError("REPLICATION_UNAVAILABLE", error.message);
      if (performance.now() > giveUpAt) {
        throw new BulkheadError("REPLICATION_UNAVAILABLE", `cannot open the change log stream '${config.stream}': ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/**
 * For a stream made before fingerprints: two sidecars of different secrets
 * can both read "none", and stream updates have no compare-and-set, so the
 * later update would win silently. The first fingerprint created under one
 * key of a KV bucket (`<stream>_meta`; KV create fails when the key exists)
 * is the stream's; every sidecar, winner or loser, reads back the same one.
 */
async function claimFingerprint(nc: NatsConnection, config: ReplicationConfig, fingerprint: string): Promise<string> {
  const kv = await new Kvm(nc).create(`${config.stream}_meta`, { history: 1, replicas: config.replicas });
  try {
    await kv.create(KEY_SECRET_FINGERPRINT, fingerprint);
    return fingerprint;
  } catch (error) {
    const entry = await kv.get(KEY_SECRET_FINGERPRINT);
    if (!entry || entry.operation !== "PUT") throw error;
    return entry.string();
  }
}

class KeySecretMismatch extends Error {
  override readonly name = "KeySecretMismatch";
}
