import type { CommandWriter } from "../store/command-writer.js";
import { objectBody, type CommandKind, type CommandRegistry } from "../store/store-command.js";
import type { MeterAnswer, Metering } from "./metering.js";
import { validateConsume, type ConsumeInput } from "./usage-input.js";

/**
 * Metering writes as commands (ADR 42). Applying one runs Metering on the
 * transaction, so it is decided from the state at its place in the log and
 * every sidecar reaches the same answer.
 */
export class UsageCommands {
  private readonly consumeKind: CommandKind<ConsumeInput, MeterAnswer>;

  constructor(private readonly deps: { metering: Metering; commands: CommandWriter; registry: CommandRegistry }) {
    this.consumeKind = deps.registry.register({
      type: "usage.consume",
      version: 1,
      // The same checks as the request: a log entry is just another caller.
      decode: (body) => validateConsume(objectBody(body)),
      apply: (_tx, input) => deps.metering.consume(input),
    });
  }

  /**
   * Consume. Commands on one tenant's meter are appended with optimistic
   * concurrency on that meter's subject, and one this sidecar's state already
   * denies is answered here without being appended: it would consume nothing.
   */
  async consume(input: ConsumeInput): Promise<MeterAnswer> {
    const { result, revision } = await this.deps.commands.run(this.consumeKind, input, {
      concurrencyKey: meterKey(input.tenantId, input.meter),
      settledLocally: (answer) => !answer.allowed,
    });
    // A denial wrote nothing: it is as of the revision it saw, not the one the write would have had.
    return result.allowed ? result : { ...result, storeRevision: revision };
  }
}

/** One key per tenant and meter: consumes of different meters never conflict. */
export function meterKey(tenantId: string, meter: string): string {
  return `usage/${tenantId}/${meter}`;
}
