import type { Clock } from "../clock.js";
import type { CommandWriter } from "../store/command-writer.js";
import { objectBody, stringField, type CommandKind, type CommandRegistry } from "../store/store-command.js";
import { newReservationId, type MeterAnswer, type Metering, type ReserveAnswer } from "./metering.js";
import {
  validateActual, validateConsume, validateReport, validateReservationRef, validateReserve, type ConsumeInput, type ReservationRef, type ReserveInput,
} from "./usage-input.js";
import type { UsageStore } from "./usage-store.js";
import { requireId } from "../validation.js";

interface ReserveBody { input: ReserveInput; reservationId: string }
interface CommitBody { ref: ReservationRef; actual: number }
type ReportBody = ReturnType<typeof validateReport>;

/**
 * Metering writes as commands (ADRs 42, 44, 63). Applying one runs Metering
 * on the transaction, so it is decided from the state at its place in the log
 * and every sidecar reaches the same answer. Every one of them is appended on
 * its tenant's meter subject with optimistic concurrency, so Consume and
 * Reserve racing for a meter's last units on several sidecars stay exact.
 */
export class UsageCommands {
  private readonly consumeKind: CommandKind<ConsumeInput, MeterAnswer>;
  private readonly reserveKind: CommandKind<ReserveBody, ReserveAnswer>;
  private readonly commitKind: CommandKind<CommitBody, MeterAnswer>;
  private readonly releaseKind: CommandKind<ReservationRef, { released: number; storeRevision: number }>;
  private readonly reportKind: CommandKind<ReportBody, { used: number; storeRevision: number }>;
  private readonly sweepKind: CommandKind<{ period: number }, { reservations: number; keys: number }>;

  constructor(private readonly deps: { metering: Metering; commands: CommandWriter; registry: CommandRegistry; usage: UsageStore; clock: Clock }) {
    const { metering, registry } = deps;
    // The same checks as the requests: a log entry is just another caller.
    this.consumeKind = registry.register({
      type: "usage.consume", version: 1,
      decode: (body) => validateConsume(objectBody(body)),
      apply: (_tx, input) => metering.consume(input),
    });
    this.reserveKind = registry.register({
      type: "usage.reserve", version: 1,
      decode: (raw) => {
        const body = objectBody(raw);
        return { input: validateReserve(objectBody(body.input)), reservationId: requireId(stringField(body, "reservationId"), "reservation_id") };
      },
      apply: (_tx, body) => metering.reserve(body.input, body.reservationId),
    });
    this.commitKind = registry.register({
      type: "usage.commit", version: 1,
      decode: (raw) => {
        const body = objectBody(raw);
        return { ref: validateReservationRef(objectBody(body.ref)), actual: validateActual(body.actual as number | undefined) };
      },
      apply: (_tx, body) => metering.commit(body.ref, body.actual),
    });
    this.releaseKind = registry.register({
      type: "usage.release", version: 1,
      decode: (body) => validateReservationRef(objectBody(body)),
      apply: (_tx, ref) => metering.release(ref),
    });
    this.reportKind = registry.register({
      type: "usage.report", version: 1,
      decode: (body) => validateReport(objectBody(body)),
      apply: (_tx, body) => metering.report(body.tenantId, body.meter, body.value),
    });
    this.sweepKind = registry.register({
      type: "usage.sweep", version: 1,
      decode: (raw) => {
        const period = objectBody(raw).period;
        if (!Number.isSafeInteger(period) || (period as number) < 0) throw new Error("period is not a non-negative integer");
        return { period: period as number };
      },
      // At the entry's time, so every sidecar expires the same holds and keys.
      apply: (tx) => deps.usage.sweep(tx, tx.now),
    });
  }

  /**
   * The housekeeping sweep (lapsed holds marked, old idempotency keys
   * dropped) as one command per period for the whole cluster (ADR 61):
   * every sidecar's timer asks, all under the message id of the period, so
   * JetStream stores the first and de-duplicates the rest. A sweep that finds
   * nothing on this sidecar's state appends nothing.
   */
  async sweep(periodMs: number): Promise<{ reservations: number; keys: number; revision: number }> {
    const period = Math.floor(this.deps.clock.now() / periodMs);
    const { result, revision } = await this.deps.commands.run(this.sweepKind, { period }, {
      messageId: `usage-sweep:${periodMs}:${period}`,
      settledLocally: (answer) => answer.reservations + answer.keys === 0,
    });
    return { ...result, revision };
  }

  /**
   * Consume. One this sidecar's state already denies is answered here
   * without being appended: it would consume nothing.
   */
  async consume(input: ConsumeInput): Promise<MeterAnswer> {
    const { result, revision } = await this.deps.commands.run(this.consumeKind, input, {
      concurrencyKey: meterKey(input.tenantId, input.meter),
      settledLocally: (answer) => !answer.allowed,
    });
    return asOf(result, revision);
  }

  /** Reserve: like Consume, with the reservation id fixed where the command is made. */
  async reserve(input: ReserveInput): Promise<ReserveAnswer> {
    const body = { input, reservationId: newReservationId(this.deps.clock.now()) };
    const { result, revision } = await this.deps.commands.run(this.reserveKind, body, {
      concurrencyKey: meterKey(input.tenantId, input.meter),
      settledLocally: (answer) => !answer.allowed,
    });
    return asOf(result, revision);
  }

  /** Commit: ordered with the other writes on the reservation's meter. */
  async commit(ref: ReservationRef, actual: number): Promise<MeterAnswer> {
    const { result } = await this.deps.commands.run(this.commitKind, { ref, actual }, await this.onReservationMeter(ref));
    return result;
  }

  async release(ref: ReservationRef): Promise<{ released: number; storeRevision: number }> {
    return (await this.deps.commands.run(this.releaseKind, ref, await this.onReservationMeter(ref))).result;
  }

  /**
   * ReportUsage (ADR 60): the host's absolute count for a count meter. On the
   * meter's subject, so a report and the Consumes around it are in one order
   * on every sidecar: the last one in the log wins everywhere, never a
   * different one per sidecar.
   */
  async report(body: ReportBody): Promise<{ used: number; storeRevision: number }> {
    // Decided here first (never settles): a refused report (not a count meter) appends nothing.
    const { result, revision } = await this.deps.commands.run(this.reportKind, body, {
      concurrencyKey: meterKey(body.tenantId, body.meter),
      settledLocally: () => false,
    });
    return { ...result, storeRevision: revision };
  }

  /**
   * The reservation's meter key, from this sidecar's state. A reservation
   * taken on another sidecar a moment ago may not be applied here yet, so
   * one not found waits for the log as it is now before deciding. Deciding
   * locally first (`settledLocally` never settles) means a refusal (closed,
   * not found, too many units) is answered without appending anything.
   */
  private async onReservationMeter(ref: ReservationRef) {
    if (!this.deps.usage.reservation(ref.tenantId, ref.reservationId)) await this.deps.commands.syncWithLog();
    const reservation = this.deps.usage.reservation(ref.tenantId, ref.reservationId);
    return {
      ...(reservation && { concurrencyKey: meterKey(ref.tenantId, reservation.meter) }),
      settledLocally: () => false,
    };
  }
}

/** A denial wrote nothing: it is as of the revision it saw, not the one the write would have had. */
function asOf<T extends MeterAnswer>(result: T, revision: number): T {
  return result.allowed ? result : { ...result, storeRevision: revision };
}

/** One key per tenant and meter: writes on different meters never conflict. */
export function meterKey(tenantId: string, meter: string): string {
  return `usage/${tenantId}/${meter}`;
}
