import { invalidArgument } from "../errors.js";
import { requireAmount, requireId, requireToken } from "../validation.js";

export interface ConsumeInput {
  tenantId: string;
  meter: string;
  amount: number;
  idempotencyKey: string;
}

export interface ReserveInput extends ConsumeInput {
  ttlSeconds: number;
}

export interface ReservationRef {
  tenantId: string;
  reservationId: string;
}

export const RESERVATION_TTL = { defaultSeconds: 300, maxSeconds: 86_400 } as const;

type Raw<T> = { [K in keyof T]?: T[K] };

export function validateConsume(raw: Raw<ConsumeInput>): ConsumeInput {
  return {
    tenantId: requireId(raw.tenantId, "tenant_id"),
    meter: requireId(raw.meter, "meter"),
    amount: requireAmount(raw.amount, "amount"),
    idempotencyKey: requireToken(raw.idempotencyKey, "idempotency_key"),
  };
}

export function validateReserve(raw: Raw<ReserveInput>): ReserveInput {
  const ttlSeconds = raw.ttlSeconds || RESERVATION_TTL.defaultSeconds;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds > RESERVATION_TTL.maxSeconds) {
    throw invalidArgument("ttl_seconds", `must be at most ${RESERVATION_TTL.maxSeconds}`);
  }
  return { ...validateConsume(raw), ttlSeconds };
}

export function validateReservationRef(raw: Raw<ReservationRef>): ReservationRef {
  return { tenantId: requireId(raw.tenantId, "tenant_id"), reservationId: requireId(raw.reservationId, "reservation_id") };
}

export function validateActual(value: number | undefined): number {
  return requireAmount(value, "actual", 0);
}

export function validateReport(raw: { tenantId?: string; meter?: string; value?: number }) {
  return { tenantId: requireId(raw.tenantId, "tenant_id"), meter: requireId(raw.meter, "meter"), value: requireAmount(raw.value, "value", 0) };
}
