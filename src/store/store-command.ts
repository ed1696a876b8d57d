import { BulkheadError } from "../errors.js";
import type { WriteScope } from "./revision-writer.js";

/**
 * One write as data (ADR 42): what single-node mode applies locally and
 * replicated mode appends to the log, byte for byte the same. `type` names
 * the write, `v` the version of its body's shape, `at` the time the writing
 * sidecar took it at (every sidecar applies it at that time, so windows,
 * expiries and audit times agree), `body` the arguments, JSON only.
 */
export interface StoreCommand {
  type: string;
  v: number;
  at: number;
  body: unknown;
}

/**
 * One kind of command. `decode` checks a body read from the log (another
 * sidecar, maybe another build, wrote it) and upgrades older versions to the
 * current shape; `apply` is the write itself, on the transaction only: given
 * the same state and the same command it does the same thing on every
 * sidecar, so it reads nothing but the store, `tx.now` and the body.
 */
export interface CommandKind<B, R> {
  readonly type: string;
  /** The version this build writes; it applies this one and every older one. */
  readonly version: number;
  decode(body: unknown, version: number): B;
  apply(tx: WriteScope, body: B): R;
}

/** The entry point every command starts from: encode it exactly as the log would carry it. */
export function encodeCommand(command: StoreCommand): Uint8Array {
  return Buffer.from(JSON.stringify(command), "utf8");
}

/**
 * A command this build cannot apply (unknown type, newer version, bad body).
 * Skipping it would leave this sidecar's state different from its peers'
 * for good, so the applier stops at it instead (ADR 43).
 */
export class UnappliableCommand extends Error {
  override readonly name = "UnappliableCommand";
}

/** Every command kind this build knows, by type. */
export class CommandRegistry {
  private readonly kinds = new Map<string, CommandKind<unknown, unknown>>();

  register<B, R>(kind: CommandKind<B, R>): CommandKind<B, R> {
    if (this.kinds.has(kind.type)) throw new Error(`command '${kind.type}' is registered twice`);
    this.kinds.set(kind.type, kind as CommandKind<unknown, unknown>);
    return kind;
  }

  /** Parses and checks log bytes; throws UnappliableCommand for anything this build must not guess at. */
  decode(bytes: Uint8Array): { command: StoreCommand; kind: CommandKind<unknown, unknown>; body: unknown } {
    let command: StoreCommand;
    try {
      command = JSON.parse(Buffer.from(bytes).toString("utf8")) as StoreCommand;
    } catch (error) {
      throw new UnappliableCommand(`log entry is not JSON: ${(error as Error).message}`);
    }
    if (typeof command !== "object" || command === null || typeof command.type !== "string") {
      throw new UnappliableCommand("log entry has no command type");
    }
    const kind = this.kinds.get(command.type);
    if (!kind) throw new UnappliableCommand(`unknown command '${command.type}' (written by a newer build?)`);
    if (!Number.isInteger(command.v) || command.v < 1 || command.v > kind.version) {
      throw new UnappliableCommand(`command '${command.type}' v${String(command.v)}: this build applies v1..v${kind.version}`);
    }
    if (!Number.isSafeInteger(command.at) || command.at < 0) throw new UnappliableCommand(`command '${command.type}' has no valid time`);
    try {
      return { command, kind, body: kind.decode(command.body, command.v) };
    } catch (error) {
      throw new UnappliableCommand(`command '${command.type}' v${command.v}: ${(error as Error).message}`);
    }
  }
}

/**
 * A refusal that is part of a command's meaning (unknown role, limit, a
 * reused key): every sidecar reaches it from the same state, so applying it
 * is still applying the entry. Anything else thrown (SQLite failed) is not an
 * outcome, and the entry is applied again rather than skipped.
 */
export function isCommandOutcome(error: unknown): boolean {
  return error instanceof BulkheadError && !["STORE_FAILED", "STORE_BUSY", "INTERNAL"].includes(error.code);
}

/** Shape checks for `decode`: a body read from the log must be what its kind expects. */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("body is not an object");
  return body as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== "string") throw new Error(`${name} is not a string`);
  return value;
}
