import { ulid } from "../ids.js";
import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";

export interface ImpersonationSession {
  id: string;
  staffId: string;
  tenantId: string;
  /** The member of the tenant whose view the staff member acts with. */
  asActorId: string;
  reason: string;
  startedAt: number;
  expiresAt: number;
  endedAt: number | null;
}

export function newSessionId(now: number): string {
  return `imp_${ulid(now)}`;
}

const COLUMNS = `id, staff_id AS staffId, tenant_id AS tenantId, as_actor_id AS asActorId, reason,
  started_at AS startedAt, expires_at AS expiresAt, ended_at AS endedAt`;

/**
 * Time-boxed impersonation sessions. A session is live while now < expires_at
 * and it has not been ended; nothing needs to run at expiry, so it is exact.
 */
export class ImpersonationStore {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = {
      byId: db.prepare<[string], ImpersonationSession>(`SELECT ${COLUMNS} FROM impersonations WHERE id = ?`),
      live: db.prepare<[string, string, number], ImpersonationSession>(
        `SELECT ${COLUMNS} FROM impersonations
         WHERE staff_id = ? AND tenant_id = ? AND ended_at IS NULL AND expires_at > ?
         ORDER BY started_at DESC LIMIT 1`,
      ),
      insert: db.prepare(
        `INSERT INTO impersonations (id, staff_id, tenant_id, as_actor_id, reason, started_at, expires_at)
         VALUES (@id, @staffId, @tenantId, @asActorId, @reason, @startedAt, @expiresAt)`,
      ),
      end: db.prepare("UPDATE impersonations SET ended_at = ? WHERE id = ? AND ended_at IS NULL AND expires_at > ?"),
      liveTenantsOfStaff: db.prepare<[string, number], string>(
        "SELECT DISTINCT tenant_id FROM impersonations WHERE staff_id = ? AND ended_at IS NULL AND expires_at > ?",
      ).pluck(),
      endAllForStaff: db.prepare("UPDATE impersonations SET ended_at = ? WHERE staff_id = ? AND ended_at IS NULL AND expires_at > ?"),
      endAllInTenant: db.prepare("UPDATE impersonations SET ended_at = ? WHERE tenant_id = ? AND ended_at IS NULL AND expires_at > ?"),
    };
  }

  get(id: string): ImpersonationSession | undefined {
    return this.stmt.byId.get(id);
  }

  /** The staff member's live session in this tenant, if any (one at a time: a new one ends the old). */
  live(staffId: string, tenantId: string, now: number): ImpersonationSession | undefined {
    return this.stmt.live.get(staffId, tenantId, now);
  }

  /** `id` comes from the sidecar that took the call, so every sidecar stores the same session id. */
  start(tx: WriteScope, spec: Pick<ImpersonationSession, "staffId" | "tenantId" | "asActorId" | "reason" | "expiresAt">, id = newSessionId(tx.now)): ImpersonationSession {
    const previous = this.live(spec.staffId, spec.tenantId, tx.now);
    if (previous) this.stmt.end.run(tx.now, previous.id, tx.now);
    const session = { ...spec, id, startedAt: tx.now, endedAt: null };
    this.stmt.insert.run(session);
    tx.changed(spec.tenantId, "impersonation");
    return session;
  }

  end(tx: WriteScope, session: ImpersonationSession): boolean {
    const ended = this.stmt.end.run(tx.now, session.id, tx.now).changes > 0;
    if (ended) tx.changed(session.tenantId, "impersonation");
    return ended;
  }

  endAllForStaff(tx: WriteScope, staffId: string): number {
    for (const tenantId of this.stmt.liveTenantsOfStaff.all(staffId, tx.now)) tx.changed(tenantId, "impersonation");
    return this.stmt.endAllForStaff.run(tx.now, staffId, tx.now).changes;
  }

  endAllInTenant(tx: WriteScope, tenantId: string): number {
    const ended = this.stmt.endAllInTenant.run(tx.now, tenantId, tx.now).changes;
    if (ended > 0) tx.changed(tenantId, "impersonation");
    return ended;
  }
}
