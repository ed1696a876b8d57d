import { type AdminActor, type AuditedWriter, type WriteResult } from "../audit/audited-write.js";
import type { RoleCatalog } from "../context/role-catalog.js";
import type { DirectoryStore, Tenant } from "../directory/directory-store.js";
import { BulkheadError, invalidArgument } from "../errors.js";
import type { ApiKey, ApiKeyStore } from "./api-keys.js";
import type { ApprovableChange, Approval, Approvals } from "./approvals.js";
import type { ImpersonationSession, ImpersonationStore } from "./impersonation-store.js";
import type { StaffMember, StaffStore } from "./staff-store.js";
import { newStaffToken } from "./staff-tokens.js";

/** The longest a rotated-out key keeps working. */
export const MAX_ROTATION_OVERLAP_SECONDS = 7 * 86_400;

export interface ApiKeySpec {
  tenantId: string;
  name: string;
  scopes: string[];
  expiresInDays: number;
  ratePerMinute: number;
}

/**
 * Who can act: API keys of one tenant, staff members, the second approvals
 * global writes need, and time-boxed impersonation sessions.
 */
export class AccessAdmin {
  constructor(
    private readonly deps: {
      audited: AuditedWriter;
      directory: DirectoryStore;
      roles: RoleCatalog;
      apiKeys: ApiKeyStore;
      staff: StaffStore;
      approvals: Approvals;
      impersonations: ImpersonationStore;
      maxImpersonationSeconds: number;
      keySecret: Buffer;
    },
  ) {}

  createApiKey(spec: ApiKeySpec, by: AdminActor): WriteResult & { key: ApiKey; raw: string } {
    this.checkScopes(spec.scopes);
    const { revision, changed, result } = this.deps.audited.write(by, { tenantId: spec.tenantId, object: "api_key", action: "api_key.create" }, (tx) => {
      this.requireLiveTenant(spec.tenantId);
      return this.deps.apiKeys.create(tx, {
        tenantId: spec.tenantId,
        name: spec.name,
        scopes: spec.scopes,
        ratePerMinute: spec.ratePerMinute,
        expiresAt: spec.expiresInDays > 0 ? tx.now + spec.expiresInDays * 86_400_000 : null,
        createdBy: by.caller.actor,
      });
    });
    return { revision, changed, ...result };
  }

  /** The old key keeps working for `overlapSeconds`; the key must belong to `tenantId`. */
  rotateApiKey(tenantId: string, keyId: string, overlapSeconds: number, by: AdminActor): WriteResult & { key: ApiKey; raw: string } {
    if (overlapSeconds > MAX_ROTATION_OVERLAP_SECONDS) {
      throw invalidArgument("overlap_seconds", `must be at most ${MAX_ROTATION_OVERLAP_SECONDS} (7 days)`);
    }
    const { revision, changed, result } = this.deps.audited.write(by, { tenantId, object: `api_key:${keyId}`, action: "api_key.rotate" }, (tx) => {
      this.requireKey(tenantId, keyId);
      const rotated = this.deps.apiKeys.rotate(tx, keyId, overlapSeconds * 1000, by.caller.actor);
      if (!rotated) throw new BulkheadError("ADMIN_CONFLICT", `key_id: '${keyId}' is revoked, expired or already rotated; rotate its replacement`, "key_id");
      return rotated;
    });
    return { revision, changed, ...result };
  }

  revokeApiKey(tenantId: string, keyId: string, by: AdminActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `api_key:${keyId}`, action: "api_key.revoke" }, (tx) => {
      this.requireKey(tenantId, keyId);
      this.deps.apiKeys.revoke(tx, tenantId, keyId);
    });
  }

  listApiKeys(tenantId: string): ApiKey[] {
    this.requireTenant(tenantId);
    return this.deps.apiKeys.list(tenantId);
  }

  /** Returns the new token when one was issued (new member, or issueToken). */
  putStaff(member: StaffMember, issueToken: boolean, by: AdminActor): WriteResult & { token: string | null } {
    const { revision, changed, result } = this.deps.audited.write(by, { tenantId: null, object: `staff:${member.id}`, action: "staff.put" }, (tx) => {
      const current = this.deps.staff.get(member.id);
      if (current && !issueToken && current.name === member.name && current.role === member.role && current.status === member.status) return null;
      const token = !current || issueToken ? newStaffToken(this.deps.keySecret) : null;
      this.deps.staff.put(tx, member, token?.hash ?? null);
      // A session was granted to the person in their old role; a new role (or none) starts from nothing.
      if (current && (current.role !== member.role || member.status !== "active")) this.deps.impersonations.endAllForStaff(tx, member.id);
      return token?.raw ?? null;
    });
    return { revision, changed, token: result };
  }

  requestApproval(change: ApprovableChange, by: AdminActor): Approval {
    const caller = requireStaff(by, "request an approval");
    return this.deps.audited.write(by, { tenantId: null, object: `approval:${change.verb}:${change.object}`, action: "approval.request" }, (tx) =>
      this.deps.approvals.request(tx, change, caller, by.reason),
    ).result;
  }

  /** The approval with the content it covers, so the approver reads what they approve. */
  getApproval(approvalId: string): Approval {
    return this.deps.approvals.get(approvalId);
  }

  approve(approvalId: string, by: AdminActor): Approval {
    const caller = requireStaff(by, "approve");
    return this.deps.audited.write(by, { tenantId: null, object: `approval:${approvalId}`, action: "approval.approve" }, (tx) =>
      this.deps.approvals.approve(tx, approvalId, caller),
    ).result;
  }

  /**
   * A named staff member takes the view of one active member of one tenant
   * until the session expires (at most the configured maximum). Checks with
   * actor_type staff carry context.impersonation, which the policy restricts
   * by staff role.
   */
  startImpersonation(tenantId: string, asActorId: string, ttlSeconds: number, by: AdminActor): WriteResult & { session: ImpersonationSession } {
    if (by.caller.kind !== "staff") throw new BulkheadError("ADMIN_FORBIDDEN", "impersonation needs a named staff member's token, not a shared credential");
    const max = this.deps.maxImpersonationSeconds;
    if (ttlSeconds <= 0 || ttlSeconds > max) throw invalidArgument("ttl_seconds", `must be from 1 to ${max} (BULKHEAD_IMPERSONATION_MAX_TTL_SECONDS)`);
    const target = { tenantId, object: `impersonation:${tenantId}/${asActorId}`, action: "impersonation.start" };
    const { revision, changed, result } = this.deps.audited.write(by, target, (tx) => {
      this.requireLiveTenant(tenantId);
      const member = this.deps.directory.membership(tenantId, asActorId);
      if (member?.status !== "active") throw invalidArgument("as_actor_id", `'${asActorId}' is not an active member of ${tenantId}`);
      return this.deps.impersonations.start(tx, { staffId: by.caller.staffId, tenantId, asActorId, reason: by.reason, expiresAt: tx.now + ttlSeconds * 1000 });
    });
    return { revision, changed, session: result };
  }

  /** Ends the caller's own session (the bootstrap credential may end anyone's). */
  endImpersonation(tenantId: string, sessionId: string, by: AdminActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `impersonation:${sessionId}`, action: "impersonation.end" }, (tx) => {
      const session = this.deps.impersonations.get(sessionId);
      if (!session || session.tenantId !== tenantId) throw new BulkheadError("ADMIN_NOT_FOUND", `session_id: no session '${sessionId}' in ${tenantId}`, "session_id");
      if (by.caller.kind !== "bootstrap" && session.staffId !== by.caller.staffId) {
        throw new BulkheadError("ADMIN_FORBIDDEN", "only the staff member who started a session (or the bootstrap credential) may end it");
      }
      this.deps.impersonations.end(tx, session);
    });
  }

  private checkScopes(scopes: string[]): void {
    if (scopes.length === 0) throw invalidArgument("scopes", "at least one permission is required");
    const known = new Set(this.deps.roles.catalogPermissions());
    scopes.forEach((s, i) => {
      if (!known.has(s)) throw invalidArgument(`scopes[${i}]`, `unknown permission '${s}' (not in the action catalog)`);
    });
  }

  private requireTenant(tenantId: string): Tenant {
    const tenant = this.deps.directory.tenantById(tenantId);
    if (!tenant) throw new BulkheadError("TENANT_NOT_FOUND", `tenant_id: no tenant '${tenantId}'`, "tenant_id");
    return tenant;
  }

  private requireLiveTenant(tenantId: string): void {
    if (this.requireTenant(tenantId).status === "deleted") {
      throw new BulkheadError("ADMIN_CONFLICT", `tenant_id: tenant '${tenantId}' is deleted`, "tenant_id");
    }
  }

  /** A key id of another tenant is reported exactly like a missing one. */
  private requireKey(tenantId: string, keyId: string): void {
    if (this.deps.apiKeys.get(keyId)?.tenantId !== tenantId) {
      throw new BulkheadError("ADMIN_NOT_FOUND", `key_id: no key '${keyId}' in ${tenantId}`, "key_id");
    }
  }
}

function requireStaff(by: AdminActor, what: string): string {
  if (by.caller.kind !== "staff") throw new BulkheadError("ADMIN_FORBIDDEN", `only a named staff member may ${what}`);
  return by.caller.actor;
}
