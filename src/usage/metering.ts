import { effectivePlan } from "../billing/billing-access.js";
import type { SqliteBillingStore } from "../billing/billing-store.js";
import type { Clock } from "../clock.js";
import type { DirectoryStore, Tenant } from "../directory/directory-store.js";
import { resolveEntitlements, type EffectiveLimit } from "../entitlements/entitlement-resolver.js";
import type { EntitlementStore } from "../entitlements/entitlement-store.js";
import type { Reason } from "../engine/decision-result.js";
import { BulkheadError, invalidArgument } from "../errors.js";
import type { Outbox } from "../events/outbox.js";
import { ulid } from "../ids.js";
import type { RevisionWriter, WriteScope } from "../store/revision-writer.js";
import { idempotentWrite, internalKey } from "./idempotent-write.js";
import { readMeterState, remaining, type MeterState } from "./meter-state.js";
import type { ConsumeInput, ReservationRef, ReserveInput } from "./usage-input.js";
import type { UsageStore } from "./usage-store.js";

export interface MeterAnswer {
  allowed: boolean;
  used: number;
  reserved: number;
  /** null: unlimited. */
  limit: number | null;
  remaining: number | null;
  reasons: Reason[];
  storeRevision: number;
}

export interface ReserveAnswer extends MeterAnswer {
  reservationId: string;
  expiresAt: number;
}

export interface MeteringDeps {
  writer: RevisionWriter;
  billing: Pick<SqliteBillingStore, "state">;
  directory: DirectoryStore;
  entitlements: EntitlementStore;
  usage: UsageStore;
  outbox: Outbox;
  clock: Clock;
}

/**
 * Race-safe metering. Every operation is one IMMEDIATE write transaction that
 * reads the limit and usage and writes the increment together, so concurrent
 * callers in any process sharing the database serialise on SQLite's write
 * lock and can never overshoot the hard limit. A denied call writes nothing.
 */
export class Metering {
  constructor(private readonly deps: MeteringDeps) {}

  consume(input: ConsumeInput): MeterAnswer {
    return this.idempotent(input.tenantId, input.idempotencyKey, "consume", input, (tx) => {
      const { state, tenant } = this.consumableState(input.tenantId, input.meter, tx.now);
      const refused = this.refusedUpFront(tenant, state, input.amount);
      if (refused) return { answer: refused, keep: false };
      if (input.amount > remaining(state)) return { answer: denial(state, input.amount), keep: false };
      const used = this.charge(tx, input.tenantId, state, input.amount);
      return { answer: answer(true, { ...state, used }, [], tx.revision), keep: true };
    });
  }

  /**
   * `reservationId` is chosen by whoever makes the command (ADR 63): every
   * sidecar applying one Reserve must hold it under the same id. It is not
   * part of the request a retry is compared with.
   */
  reserve(input: ReserveInput, reservationId?: string): ReserveAnswer {
    return this.idempotent(input.tenantId, input.idempotencyKey, "reserve", input, (tx) => {
      const { state, tenant } = this.consumableState(input.tenantId, input.meter, tx.now);
      const expiresAt = tx.now + input.ttlSeconds * 1000;
      const refused = this.refusedUpFront(tenant, state, input.amount) ?? (input.amount > remaining(state) ? denial(state, input.amount) : undefined);
      if (refused) return { answer: { ...refused, reservationId: "", expiresAt: 0 }, keep: false };
      const id = reservationId ?? newReservationId(tx.now);
      this.deps.usage.hold(tx, {
        id, tenantId: input.tenantId, meter: input.meter, windowStart: state.window.start,
        amount: input.amount, state: "held", expiresAt,
      });
      const held = { ...state, reserved: state.reserved + input.amount };
      return { answer: { ...answer(true, held, [], tx.revision), reservationId: id, expiresAt }, keep: true };
    });
  }

  /**
   * Records `actual` units (at most what was reserved, like capturing an
   * authorisation) in the window the reservation was made in, and returns the rest.
   */
  commit(ref: ReservationRef, actual: number): MeterAnswer {
    return this.idempotent(ref.tenantId, internalKey("commit", ref.reservationId), "commit", { ...ref, actual }, (tx) => {
      const reservation = this.openReservation(tx, ref);
      if (actual > reservation.amount) {
        throw invalidArgument("actual", `must be at most the ${reservation.amount} units reserved; reserve enough up front`);
      }
      this.deps.usage.close(tx, reservation, "committed");
      const current = this.consumableState(ref.tenantId, reservation.meter, tx.now).state;
      const state = { ...current, window: { ...current.window, start: reservation.windowStart } };
      state.used = this.deps.usage.used(ref.tenantId, reservation.meter, reservation.windowStart);
      state.reserved = this.deps.usage.reserved(ref.tenantId, reservation.meter, reservation.windowStart, tx.now);
      const used = actual > 0 ? this.charge(tx, ref.tenantId, state, actual) : state.used;
      return { answer: answer(true, { ...state, used }, [], tx.revision), keep: true };
    });
  }

  release(ref: ReservationRef): { released: number; storeRevision: number } {
    return this.idempotent(ref.tenantId, internalKey("release", ref.reservationId), "release", ref, (tx) => {
      const reservation = this.openReservation(tx, ref);
      this.deps.usage.close(tx, reservation, "released");
      return { answer: { released: reservation.amount, storeRevision: tx.revision }, keep: true };
    });
  }

  /** Sets a count meter (projects, ...) to the value the host reports. */
  report(tenantId: string, meter: string, value: number): { used: number; storeRevision: number } {
    const { result } = this.deps.writer.write((tx) => {
      const state = this.stateFor(tenantId, meter, tx.now);
      if (state.limit.kind !== "count") {
        throw invalidArgument("meter", `${meter} is a ${state.limit.kind} meter; only count meters take reported values`);
      }
      this.deps.usage.set(tx, tenantId, meter, state.window.start, value);
      return { used: value, storeRevision: tx.revision };
    });
    return result;
  }

  /**
   * Adds `amount` to a meter inside the caller's transaction (Check with
   * consume uses it after the policy allowed) and emits a soft-limit warning
   * the first time the window crosses it. Returns the new usage.
   */
  charge(tx: WriteScope, tenantId: string, state: MeterState, amount: number): number {
    const used = this.deps.usage.add(tx, tenantId, state.limit.meter, state.window.start, amount);
    const soft = state.limit.soft;
    if (soft !== null && used + state.reserved >= soft &&
        this.deps.usage.markWarned(tx, tenantId, state.limit.meter, state.window.start, "soft")) {
      this.deps.outbox.append(tx, tenantId, "usage_limit_warning", {
        meter: state.limit.meter, used: used + state.reserved, soft, hard: state.limit.hard,
        window_start: new Date(state.window.start).toISOString(),
        resets_at: Number.isFinite(state.window.end) ? new Date(state.window.end).toISOString() : null,
      });
    }
    return used;
  }

  /** The tenant's current state of one meter; TENANT_NOT_FOUND and unknown meters are errors. */
  stateFor(tenantId: string, meter: string, now: number): MeterState {
    return this.tenantMeter(tenantId, meter, now).state;
  }

  /** The tenant row and the meter's state, read once for both. */
  private tenantMeter(tenantId: string, meter: string, now: number): { tenant: Tenant; state: MeterState } {
    const tenant = this.deps.directory.tenantById(tenantId);
    if (!tenant) throw new BulkheadError("TENANT_NOT_FOUND", "no such tenant", "tenant_id");
    const spec = this.deps.entitlements.meter(meter);
    if (!spec) throw invalidArgument("meter", `unknown meter '${meter}'`);
    // The plan in force now (cancel at period end), as decisions see it.
    const { planCode } = effectivePlan(tenant, this.deps.billing.state(tenantId), now);
    const snapshot = resolveEntitlements(this.deps.entitlements, tenantId, this.deps.entitlements.plan(planCode), now);
    const limit: EffectiveLimit = snapshot.limits[meter] ?? {
      meter, kind: spec.kind, reset: spec.reset, soft: null, hard: null, sources: [],
    };
    return { tenant, state: readMeterState(this.deps, tenantId, limit, now) };
  }

  private consumableState(tenantId: string, meter: string, now: number): { tenant: Tenant; state: MeterState } {
    const read = this.tenantMeter(tenantId, meter, now);
    if (read.state.limit.kind === "seats") {
      throw invalidArgument("meter", `${meter} is counted from memberships and cannot be consumed`);
    }
    return read;
  }

  /**
   * Refusals that do not depend on the amount: a tenant that is suspended or
   * deleted uses nothing, and a meter the tenant's plan, add-ons and
   * overrides never mention is not in its plan.
   */
  private refusedUpFront(tenant: Tenant, state: MeterState, requested: number): MeterAnswer | undefined {
    const { status } = tenant;
    if (status !== "active") {
      const reason: Reason = { code: "tenant_suspended", message: `tenant status is ${status}`, details: { status: String(status) } };
      return answer(false, state, [reason], 0);
    }
    if (state.limit.sources.length > 0) return undefined;
    const reason: Reason = {
      code: "not_in_plan",
      message: `the tenant's plan does not include ${state.limit.meter}`,
      details: { meter: state.limit.meter, requested: String(requested) },
    };
    return answer(false, state, [reason], 0);
  }

  private openReservation(tx: WriteScope, ref: ReservationRef) {
    const reservation = this.deps.usage.reservation(ref.tenantId, ref.reservationId);
    if (!reservation) throw new BulkheadError("RESERVATION_NOT_FOUND", "no such reservation", "reservation_id");
    if (reservation.state !== "held" || reservation.expiresAt <= tx.now) {
      const state = reservation.state === "held" ? "expired" : reservation.state;
      throw new BulkheadError("RESERVATION_CLOSED", `reservation is ${state}`, "reservation_id");
    }
    return reservation;
  }

  /** A kept answer carries the revision it committed at; a denial wrote nothing and is as of the revision it saw. */
  private idempotent<T extends { storeRevision: number }>(
    tenantId: string,
    key: string,
    operation: string,
    request: object,
    work: (tx: WriteScope) => { answer: T; keep: boolean },
  ): T {
    let kept = false;
    const outcome = idempotentWrite<T>(this.deps, { tenantId, key, operation, request }, (tx, replay) => {
      if (replay) return { answer: replay, keep: false, replayed: true };
      const done = work(tx);
      kept = done.keep;
      return done;
    });
    return outcome.replayed || kept ? outcome.answer : { ...outcome.answer, storeRevision: outcome.revision };
  }
}

/** `rsv_` + a ULID: reservation ids sort by the time they were taken. */
export function newReservationId(now: number): string {
  return `rsv_${ulid(now)}`;
}

function answer(allowed: boolean, state: MeterState, reasons: Reason[], storeRevision: number): MeterAnswer {
  const left = remaining(state);
  return {
    allowed, used: state.used, reserved: state.reserved, limit: state.limit.hard,
    remaining: Number.isFinite(left) ? left : null, reasons, storeRevision,
  };
}

function denial(state: MeterState, requested: number): MeterAnswer {
  return answer(false, state, [limitReached(state, requested)], 0);
}

/** The limit_reached reason, with the same details the policy gives. */
export function limitReached(state: MeterState, requested: number): Reason {
  return {
    code: "limit_reached",
    message: `limit reached for ${state.limit.meter}`,
    details: {
      meter: state.limit.meter,
      used: String(state.used + state.reserved),
      limit: String(state.limit.hard),
      requested: String(requested),
      resets_at: Number.isFinite(state.window.end) ? new Date(state.window.end).toISOString() : "",
    },
  };
}
