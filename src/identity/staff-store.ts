import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { StaffRole } from "./staff-roles.js";

export interface StaffMember {
  id: string;
  name: string;
  role: StaffRole;
  status: "active" | "disabled";
}

/**
 * Staff members and the keyed hash of their token (see staff-tokens.ts);
 * the token itself is never stored.
 */
export class StaffStore {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = {
      byId: db.prepare<[string], StaffMember>("SELECT id, name, role, status FROM staff WHERE id = ?"),
      byTokenHash: db.prepare<[string], StaffMember>("SELECT id, name, role, status FROM staff WHERE token_hash = ?"),
      upsert: db.prepare(
        `INSERT INTO staff (id, name, role, status, token_hash, created_at, updated_at)
         VALUES (@id, @name, @role, @status, @tokenHash, @now, @now)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, status = excluded.status,
           token_hash = coalesce(@newTokenHash, staff.token_hash), updated_at = excluded.updated_at`,
      ),
    };
  }

  get(id: string): StaffMember | undefined {
    return this.stmt.byId.get(id);
  }

  /** Creates or updates a member; `tokenHash` replaces the old token when given (a new member needs one). */
  put(tx: WriteScope, member: StaffMember, tokenHash: string | null): void {
    if (tokenHash === null && !this.get(member.id)) throw new Error(`staff member ${member.id} is new and needs a token`);
    this.stmt.upsert.run({ ...member, tokenHash: tokenHash ?? "", newTokenHash: tokenHash, now: tx.now });
    // A role change or a disabled member changes what their impersonation sessions may do, in any tenant.
    tx.changed(null, "staff");
  }

  /** The active member whose token has this hash, if any. */
  activeByTokenHash(hash: string): StaffMember | undefined {
    const member = this.stmt.byTokenHash.get(hash);
    return member?.status === "active" ? member : undefined;
  }
}
