import type { WriteScope } from "../store/revision-writer.js";

export type ReservationState = "held" | "committed" | "released" | "expired";

export interface Reservation {
  id: string;
  tenantId: string;
  meter: string;
  windowStart: number;
  amount: number;
  state: ReservationState;
  expiresAt: number;
}

export interface StoredResponse {
  operation: string;
  requestHash: string;
  response: string;
}

/** Usage counters, reservations and idempotency keys. */
export interface UsageStore {
  used(tenantId: string, meter: string, windowStart: number): number;
  /** Units held by reservations that have not expired at `now`. */
  reserved(tenantId: string, meter: string, windowStart: number, now: number): number;
  reservation(tenantId: string, id: string): Reservation | undefined;
  /** When the tenant's next live reservation lapses, or null when none is held. */
  nextHoldExpiry(tenantId: string, now: number): number | null;
  idempotent(tenantId: string, key: string, now: number): StoredResponse | undefined;

  add(tx: WriteScope, tenantId: string, meter: string, windowStart: number, amount: number): number;
  set(tx: WriteScope, tenantId: string, meter: string, windowStart: number, value: number): void;
  hold(tx: WriteScope, reservation: Reservation): void;
  close(tx: WriteScope, reservation: Reservation, state: Exclude<ReservationState, "held">): void;
  remember(tx: WriteScope, tenantId: string, key: string, stored: StoredResponse, expiresAt: number): void;
  /** Records that a threshold warning went out; false when it already had this window. */
  markWarned(tx: WriteScope, tenantId: string, meter: string, windowStart: number, threshold: string): boolean;
  /** Marks lapsed reservations expired and drops lapsed idempotency keys. */
  sweep(tx: WriteScope, now: number): { reservations: number; keys: number };
}
