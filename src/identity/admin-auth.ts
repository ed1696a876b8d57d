import { timingSafeEqual } from "node:crypto";
import { BulkheadError } from "../errors.js";
import { bootstrapCaller, staffCaller, syncCaller, type AdminCaller } from "./staff-roles.js";
import type { StaffStore } from "./staff-store.js";
import { staffTokenHash } from "./staff-tokens.js";

/**
 * AdminService credentials, three kinds, never interchangeable with the
 * decision callers' tokens:
 * - bootstrap (BULKHEAD_ADMIN_TOKEN or admin.token): sets up staff; shared, so
 *   the operator names themself in `bulkhead-actor` for the audit;
 * - directory sync (BULKHEAD_SYNC_TOKENS): the host keeping tenants and
 *   memberships current;
 * - staff tokens (issued by PutStaff, stored hashed): one per person, with
 *   that person's staff role.
 */
export class AdminAuth {
  private readonly bootstrap: Buffer[];
  private readonly sync: Buffer[];

  constructor(
    bootstrapTokens: readonly string[],
    syncTokens: readonly string[],
    private readonly staff: StaffStore,
    private readonly serverSecret: Buffer,
  ) {
    this.bootstrap = bootstrapTokens.map((t) => Buffer.from(t));
    this.sync = syncTokens.map((t) => Buffer.from(t));
  }

  authenticate(token: string | null, operator: string): AdminCaller {
    if (token) {
      const presented = Buffer.from(token);
      if (matchesAny(this.bootstrap, presented)) return bootstrapCaller(operator);
      if (matchesAny(this.sync, presented)) return syncCaller(operator);
      const hash = staffTokenHash(this.serverSecret, token);
      const member = hash === null ? undefined : this.staff.activeByTokenHash(hash);
      if (member) return staffCaller(member.id, member.role);
    }
    throw new BulkheadError("CALLER_UNAUTHENTICATED", "AdminService needs a bootstrap, directory-sync or staff token as a bearer token");
  }
}

/** Compares against every token in constant time, so timing says nothing about which one nearly matched. */
export function matchesAny(tokens: readonly Buffer[], presented: Buffer): boolean {
  return tokens.reduce((hit, t) => (t.length === presented.length && timingSafeEqual(t, presented)) || hit, false);
}
