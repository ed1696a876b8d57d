import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { Reservation, StoredResponse, UsageStore } from "./usage-store.js";

export class SqliteUsageStore implements UsageStore {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = {
      used: db
        .prepare<[string, string, number], number>(
          "SELECT used FROM usage_counters WHERE tenant_id = ? AND meter = ? AND window_start = ?",
        )
        .pluck(),
      reserved: db
        .prepare<[string, string, number, number], number>(
          `SELECT coalesce(sum(amount), 0) FROM usage_reservations
            WHERE tenant_id = ? AND meter = ? AND window_start = ? AND state = 'held' AND expires_at > ?`,
        )
        .pluck(),
      reservation: db.prepare<[string, string], Reservation>(
        `SELECT id, tenant_id AS tenantId, meter, window_start AS windowStart, amount, state, expires_at AS expiresAt
           FROM usage_reservations WHERE tenant_id = ? AND id = ?`,
      ),
      nextHoldExpiry: db
        .prepare<[string, number], number | null>(
          "SELECT min(expires_at) FROM usage_reservations WHERE tenant_id = ? AND state = 'held' AND expires_at > ?",
        )
        .pluck(),
      idempotent: db.prepare<[string, string, number], StoredResponse>(
        `SELECT operation, request_hash AS requestHash, response FROM idempotency_keys
          WHERE tenant_id = ? AND key = ? AND expires_at > ?`,
      ),
      add: db
        .prepare<[{ tenantId: string; meter: string; windowStart: number; amount: number }], number>(
          `INSERT INTO usage_counters (tenant_id, meter, window_start, used) VALUES (@tenantId, @meter, @windowStart, @amount)
           ON CONFLICT (tenant_id, meter, window_start) DO UPDATE SET used = used + @amount RETURNING used`,
        )
        .pluck(),
      set: db.prepare(
        `INSERT INTO usage_counters (tenant_id, meter, window_start, used) VALUES (?, ?, ?, ?)
         ON CONFLICT (tenant_id, meter, window_start) DO UPDATE SET used = excluded.used`,
      ),
      hold: db.prepare(
        `INSERT INTO usage_reservations (id, tenant_id, meter, window_start, amount, state, expires_at, created_at)
         VALUES (@id, @tenantId, @meter, @windowStart, @amount, 'held', @expiresAt, @now)`,
      ),
      close: db.prepare("UPDATE usage_reservations SET state = ? WHERE id = ? AND state = 'held'"),
      remember: db.prepare(
        `INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash, response, created_at, expires_at)
         VALUES (@tenantId, @key, @operation, @requestHash, @response, @now, @expiresAt)
         ON CONFLICT (tenant_id, key) DO UPDATE SET operation = excluded.operation, request_hash = excluded.request_hash,
           response = excluded.response, created_at = excluded.created_at, expires_at = excluded.expires_at`,
      ),
      markWarned: db.prepare(
        `INSERT INTO usage_warnings (tenant_id, meter, window_start, threshold) VALUES (?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      ),
      expireReservations: db.prepare("UPDATE usage_reservations SET state = 'expired' WHERE state = 'held' AND expires_at <= ?"),
      dropKeys: db.prepare("DELETE FROM idempotency_keys WHERE expires_at <= ?"),
    };
  }

  used(tenantId: string, meter: string, windowStart: number): number {
    return this.stmt.used.get(tenantId, meter, windowStart) ?? 0;
  }

  reserved(tenantId: string, meter: string, windowStart: number, now: number): number {
    return this.stmt.reserved.get(tenantId, meter, windowStart, now) ?? 0;
  }

  reservation(tenantId: string, id: string): Reservation | undefined {
    return this.stmt.reservation.get(tenantId, id);
  }

  nextHoldExpiry(tenantId: string, now: number): number | null {
    return this.stmt.nextHoldExpiry.get(tenantId, now) ?? null;
  }

  idempotent(tenantId: string, key: string, now: number): StoredResponse | undefined {
    return this.stmt.idempotent.get(tenantId, key, now);
  }

  add(tx: WriteScope, tenantId: string, meter: string, windowStart: number, amount: number): number {
    tx.changed(tenantId, "usage");
    return this.stmt.add.get({ tenantId, meter, windowStart, amount })!;
  }

  set(tx: WriteScope, tenantId: string, meter: string, windowStart: number, value: number): void {
    this.stmt.set.run(tenantId, meter, windowStart, value);
    tx.changed(tenantId, "usage");
  }

  hold(tx: WriteScope, reservation: Reservation): void {
    this.stmt.hold.run({ ...reservation, now: tx.now });
    tx.changed(reservation.tenantId, "usage");
  }

  close(tx: WriteScope, reservation: Reservation, state: "committed" | "released" | "expired"): void {
    this.stmt.close.run(state, reservation.id);
    tx.changed(reservation.tenantId, "usage");
  }

  remember(tx: WriteScope, tenantId: string, key: string, stored: StoredResponse, expiresAt: number): void {
    this.stmt.remember.run({ tenantId, key, ...stored, now: tx.now, expiresAt });
    tx.changed(tenantId, "idempotency");
  }

  markWarned(tx: WriteScope, tenantId: string, meter: string, windowStart: number, threshold: string): boolean {
    const inserted = this.stmt.markWarned.run(tenantId, meter, windowStart, threshold).changes > 0;
    if (inserted) tx.changed(tenantId, "usage_warning");
    return inserted;
  }

  sweep(tx: WriteScope, now: number): { reservations: number; keys: number } {
    const reservations = this.stmt.expireReservations.run(now).changes;
    const keys = this.stmt.dropKeys.run(now).changes;
    // Expired holds already stopped counting at their expiry; marking them is
    // bookkeeping, so it is recorded as a global change only when it happened.
    if (reservations + keys > 0) tx.changed(null, "usage_sweep");
    return { reservations, keys };
  }
}
