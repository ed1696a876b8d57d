import type { Clock } from "../clock.js";
import type { Committed, RevisionWriter } from "./revision-writer.js";
import { encodeCommand, type CommandKind, type CommandRegistry } from "./store-command.js";

/** How a command is ordered and settled in replicated mode; single-node mode ignores it. */
export interface CommandOptions<R> {
  /**
   * Commands with one key are appended with optimistic concurrency on their
   * own log subject (a tenant's meter), and retried on conflict (ADR 44).
   */
  concurrencyKey?: string;
  /**
   * Asked with the answer the command would give on this sidecar's state: a
   * true return answers the caller with it and appends nothing (a denied
   * Consume consumes nothing, so there is nothing to replicate).
   */
  settledLocally?: (answer: R) => boolean;
  /**
   * The log message id (default: a fresh one). Two appends with one id within
   * the stream's duplicate window are stored once (a Stripe event id, ADR 62).
   */
  messageId?: string;
}

/** The one way use cases write: by command, answered once it is applied on this sidecar. */
export interface CommandWriter {
  run<B, R>(kind: CommandKind<B, R>, body: B, options?: CommandOptions<R>): Promise<Committed<R>>;
  /** Resolves once this sidecar has applied everything the log held when asked (single-node: at once). */
  syncWithLog(): Promise<void>;
}

/**
 * Single-node mode: the command is encoded and decoded exactly as the log
 * would carry it (so nothing that cannot cross the wire is ever written),
 * then applied in one local write, as every write was before commands.
 */
export class LocalCommandWriter implements CommandWriter {
  constructor(
    private readonly writer: RevisionWriter,
    private readonly registry: CommandRegistry,
    private readonly clock: Clock,
  ) {}

  async run<B, R>(kind: CommandKind<B, R>, body: B): Promise<Committed<R>> {
    return this.runNow(kind, body);
  }

  async syncWithLog(): Promise<void> {}

  /** The same, synchronously, for callers that are not async (tools, seeding). */
  runNow<B, R>(kind: CommandKind<B, R>, body: B): Committed<R> {
    const decoded = this.registry.decode(encodeCommand({ type: kind.type, v: kind.version, at: this.clock.now(), body }));
    return this.writer.write((tx) => kind.apply(tx, decoded.body as B), decoded.command.at);
  }
}
