import { adminCommand, commandActor, requireCapability, type AdminActor, type AdminBody, type AuditedWriter, type CommandActor, type WriteResult } from "../audit/audited-write.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { CommandKind, CommandRegistry } from "../store/store-command.js";
import type { RoleCatalog } from "../context/role-catalog.js";
import type { DirectoryStore, Tenant } from "../directory/directory-store.js";
import { BulkheadError, invalidArgument } from "../errors.js";
import type { ApiKey, ApiKeyStore } from "./api-keys.js";
import { APPROVABLE_VERB_CAPABILITY, approvalVerb, newApprovalId, type ApprovableChange, type Approval, type Approvals } from "./approvals.js";
import { BREAK_GLASS_VERB_CAPABILITY, breakGlassTtlSeconds, validateJustification, type BreakGlassAuditRow, type BreakGlassTrail } from "./break-glass.js";
import { newSessionId, type ImpersonationSession, type ImpersonationStore } from "./impersonation-store.js";
import type { StaffMember, StaffStore } from "./staff-store.js";
import { newStaffToken } from "./staff-tokens.js";

/** The longest a rotated-out key keeps working. */
export const MAX_ROTATION_OVERLAP_SECONDS = 7 * 86_400;

/** A key minted on the sidecar that took the call: its id and keyed hash, never the raw key. */
interface CreateKeyBody {
  spec: ApiKeySpec;
  keyId: string;
  secretHash: string;
}

interface RotateKeyBody {
  tenantId: string;
  keyId: string;
  overlapSeconds: number;
  newKeyId: string;
  secretHash: string;
}

interface StartImpersonationBody {
  tenantId: string;
  asActorId: string;
  ttlSeconds: number;
  staffId: string;
  sessionId: string;
}

interface BreakGlassBody {
  change: ApprovableChange;
  grantId: string;
  justification: string;
  ttlSeconds: number;
}

/** Who records an expiry: no person, the sidecar's own sweep. */
const EXPIRY_ACTOR = { caller: { actor: "system:break_glass" }, reason: "break_glass_expiry", source: "sweeper" };

interface EndImpersonationBody {
  tenantId: string;
  sessionId: string;
  /** The staff member asking; only their own sessions unless anySession (the bootstrap credential). */
  staffId: string;
  anySession: boolean;
}

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
 *
 * The writes are commands (ADR 76), applied in log order on every sidecar
 * with their audit rows. Secrets and ids are made here, on the sidecar that
 * takes the call: the command carries a key's or token's keyed hash and
 * never its raw value, which goes back to the caller only; ids are in the
 * command because a ULID's random part would differ on every sidecar.
 */
export class AccessAdmin {
  private readonly kinds;

  constructor(
    private readonly deps: {
      audited: AuditedWriter;
      directory: DirectoryStore;
      roles: RoleCatalog;
      apiKeys: ApiKeyStore;
      staff: StaffStore;
      approvals: Approvals;
      breakGlass: BreakGlassTrail;
      impersonations: ImpersonationStore;
      maxImpersonationSeconds: number;
      keySecret: Buffer;
      commands: CommandWriter;
      registry: CommandRegistry;
      now: () => number;
    },
  ) {
    const r = deps.registry;
    this.kinds = {
      createKey: r.register(adminCommand("api_key.create", (_tx, b: CreateKeyBody, by) => this.applyCreateKey(b, by))),
      rotateKey: r.register(adminCommand("api_key.rotate", (_tx, b: RotateKeyBody, by) => this.applyRotateKey(b, by))),
      revokeKey: r.register(adminCommand("api_key.revoke", (_tx, b: { tenantId: string; keyId: string }, by) => this.applyRevokeKey(b.tenantId, b.keyId, by))),
      putStaff: r.register(adminCommand("staff.put", (_tx, b: { member: StaffMember; tokenHash: string | null }, by) =>
        this.applyPutStaff(b.member, b.tokenHash, by))),
      request: r.register(adminCommand("approval.request", (_tx, b: { change: ApprovableChange; approvalId: string }, by) =>
        this.deps.audited.write(by, { tenantId: null, object: `approval:${b.change.verb}:${b.change.object}`, action: "approval.request" }, (tx) =>
          this.deps.approvals.request(tx, b.change, by.caller.actor, by.reason, b.approvalId)))),
      approve: r.register(adminCommand("approval.approve", (_tx, b: { approvalId: string; mayWrite?: readonly string[] }, by) =>
        this.deps.audited.write(by, { tenantId: null, object: `approval:${b.approvalId}`, action: "approval.approve" }, (tx) => {
          // Checked where the entry lands: the request may not have reached the sidecar that took the call (ADR 79).
          const verb = approvalVerb(this.deps.approvals.get(b.approvalId).action);
          if (b.mayWrite && !b.mayWrite.includes(verb)) {
            throw new BulkheadError("ADMIN_FORBIDDEN", `the approver may not approve ${verb} (needs '${APPROVABLE_VERB_CAPABILITY[verb]}')`);
          }
          return this.deps.approvals.approve(tx, b.approvalId, by.caller.actor);
        }))),
      breakGlass: r.register(adminCommand("break_glass.open", (tx, b: BreakGlassBody, by) => {
        // Grants past their time are recorded as expired first, in the same log order on every sidecar.
        this.applyExpireBreakGlass(tx.now);
        const opened = this.deps.audited.write(by, { tenantId: null, object: `break_glass:${b.grantId}`, action: "break_glass.open" }, (tx) =>
          this.deps.approvals.openBreakGlass(tx, b.change, by.caller.actor, by.reason, b.justification, b.ttlSeconds * 1000, b.grantId));
        this.deps.breakGlass.warn("open", opened.result);
        return opened;
      })),
      expireBreakGlass: r.register(adminCommand("break_glass.expire", (tx, _b: Record<string, never>) => this.applyExpireBreakGlass(tx.now))),
      startImpersonation: r.register(adminCommand("impersonation.start", (_tx, b: StartImpersonationBody, by) => this.applyStartImpersonation(b, by))),
      endImpersonation: r.register(adminCommand("impersonation.end", (_tx, b: EndImpersonationBody, by) => this.applyEndImpersonation(b, by))),
    };
  }

  async createApiKey(spec: ApiKeySpec, by: AdminActor): Promise<WriteResult & { key: ApiKey; raw: string }> {
    this.checkScopes(spec.scopes);
    const { raw, ...minted } = this.deps.apiKeys.mint(this.deps.now());
    const result = await this.run(this.kinds.createKey, { spec, keyId: minted.id, secretHash: minted.hash }, by);
    return { ...result, raw };
  }

  /** The old key keeps working for `overlapSeconds`; the key must belong to `tenantId`. */
  async rotateApiKey(tenantId: string, keyId: string, overlapSeconds: number, by: AdminActor): Promise<WriteResult & { key: ApiKey; raw: string }> {
    if (overlapSeconds > MAX_ROTATION_OVERLAP_SECONDS) {
      throw invalidArgument("overlap_seconds", `must be at most ${MAX_ROTATION_OVERLAP_SECONDS} (7 days)`);
    }
    const { raw, ...minted } = this.deps.apiKeys.mint(this.deps.now());
    const result = await this.run(this.kinds.rotateKey, { tenantId, keyId, overlapSeconds, newKeyId: minted.id, secretHash: minted.hash }, by);
    return { ...result, raw };
  }

  revokeApiKey(tenantId: string, keyId: string, by: AdminActor): Promise<WriteResult> {
    return this.run(this.kinds.revokeKey, { tenantId, keyId }, by);
  }

  listApiKeys(tenantId: string): ApiKey[] {
    this.requireTenant(tenantId);
    return this.deps.apiKeys.list(tenantId);
  }

  /**
   * Returns the new token when one was issued (new member, or issueToken).
   * Whether the member is new is read here to decide whether to mint one;
   * applying decides again on the state at the entry's place in the log.
   */
  async putStaff(member: StaffMember, issueToken: boolean, by: AdminActor): Promise<WriteResult & { token: string | null }> {
    const token = issueToken || !this.deps.staff.get(member.id) ? newStaffToken(this.deps.keySecret) : null;
    const { revision, changed, tokenUsed } = await this.run(this.kinds.putStaff, { member, tokenHash: token?.hash ?? null }, by);
    return { revision, changed, token: tokenUsed && token ? token.raw : null };
  }

  async requestApproval(change: ApprovableChange, by: AdminActor): Promise<Approval> {
    requireStaff(by, "request an approval");
    return (await this.run(this.kinds.request, { change, approvalId: newApprovalId(this.deps.now()) }, by)).result;
  }

  /** The approval with the content it covers, so the approver reads what they approve. */
  getApproval(approvalId: string): Approval {
    return this.deps.approvals.get(approvalId);
  }

  /** The two-person queue (the console's Approvals page): live approvals with their full content. */
  pendingApprovals(): Approval[] {
    return this.deps.approvals.pending(this.deps.now());
  }

  async approve(approvalId: string, by: AdminActor): Promise<Approval> {
    requireStaff(by, "approve");
    // The verbs this approver could write themselves: the approval's verb is judged where the entry lands.
    const mayWrite = (Object.keys(APPROVABLE_VERB_CAPABILITY) as ApprovableChange["verb"][]).filter((v) => by.caller.capabilities.has(APPROVABLE_VERB_CAPABILITY[v]));
    return (await this.run(this.kinds.approve, { approvalId, mayWrite }, by)).result;
  }

  /**
   * Break-glass (ADR 54): a staff member whose role holds `break_glass` (and
   * the write's own capability) opens, alone, an approval for exactly one
   * change, with a reason code and a justification. Only they can spend it,
   * once, before its short TTL ends; open, use and expiry are each a
   * `break_glass.*` audit row and a warn line.
   */
  async breakGlass(change: ApprovableChange, justification: string, ttlSeconds: number, by: AdminActor): Promise<WriteResult & { grant: Approval }> {
    requireStaff(by, "break glass");
    requireCapability(by.caller, "break_glass", "break glass");
    requireCapability(by.caller, BREAK_GLASS_VERB_CAPABILITY[change.verb], `break glass for ${change.verb}`);
    const body = { change, grantId: newApprovalId(this.deps.now()), justification: validateJustification(justification), ttlSeconds: breakGlassTtlSeconds(ttlSeconds) };
    const { revision, changed, result } = await this.run(this.kinds.breakGlass, body, by);
    return { revision, changed, grant: result };
  }

  /** Every break-glass grant, newest first, with whether (and when) it was used or expired. */
  breakGlassLog(limit = 200): Approval[] {
    return this.deps.approvals.breakGlassLog(limit);
  }

  /** The break_glass.* audit rows on their own, newest first. */
  breakGlassTrail(limit = 200): BreakGlassAuditRow[] {
    return this.deps.breakGlass.auditRows(limit);
  }

  /**
   * Records `break_glass.expired` for grants past their TTL and never used.
   * Sent only when this sidecar sees some due; a duplicate from another
   * sidecar finds nothing left and writes nothing.
   */
  async expireBreakGlass(): Promise<number> {
    if (this.deps.approvals.dueToExpire(this.deps.now()).length === 0) return 0;
    const { result } = await this.deps.commands.run(this.kinds.expireBreakGlass, { by: EXPIRY_ACTOR });
    return result.expired;
  }

  /**
   * A named staff member takes the view of one active member of one tenant
   * until the session expires (at most the configured maximum). Checks with
   * actor_type staff carry context.impersonation, which the policy restricts
   * by staff role. The expiry is the command's time plus the TTL, the same
   * instant on every sidecar.
   */
  async startImpersonation(tenantId: string, asActorId: string, ttlSeconds: number, by: AdminActor): Promise<WriteResult & { session: ImpersonationSession }> {
    if (by.caller.kind !== "staff") throw new BulkheadError("ADMIN_FORBIDDEN", "impersonation needs a named staff member's token, not a shared credential");
    const max = this.deps.maxImpersonationSeconds;
    if (ttlSeconds <= 0 || ttlSeconds > max) throw invalidArgument("ttl_seconds", `must be from 1 to ${max} (BULKHEAD_IMPERSONATION_MAX_TTL_SECONDS)`);
    const body = { tenantId, asActorId, ttlSeconds, staffId: by.caller.staffId, sessionId: newSessionId(this.deps.now()) };
    return this.run(this.kinds.startImpersonation, body, by);
  }

  /** Ends the caller's own session (the bootstrap credential may end anyone's). */
  endImpersonation(tenantId: string, sessionId: string, by: AdminActor): Promise<WriteResult> {
    // Who the caller is was checked here; the command says what that allows.
    return this.run(this.kinds.endImpersonation, { tenantId, sessionId, staffId: by.caller.staffId, anySession: by.caller.kind === "bootstrap" }, by);
  }

  /** The revision is the command's (the global one in replicated mode), so min_revision works on any sidecar. */
  private async run<B, R extends WriteResult>(kind: CommandKind<AdminBody<B>, R>, body: B, by: AdminActor): Promise<R> {
    const { result, revision } = await this.deps.commands.run(kind, { ...body, by: commandActor(by) });
    return { ...result, revision };
  }

  private applyCreateKey(b: CreateKeyBody, by: CommandActor): WriteResult & { key: ApiKey } {
    const { spec } = b;
    const { revision, changed, result } = this.deps.audited.write(by, { tenantId: spec.tenantId, object: "api_key", action: "api_key.create" }, (tx) => {
      this.requireLiveTenant(spec.tenantId);
      return this.deps.apiKeys.createHashed(tx, {
        tenantId: spec.tenantId,
        name: spec.name,
        scopes: spec.scopes,
        ratePerMinute: spec.ratePerMinute,
        expiresAt: spec.expiresInDays > 0 ? tx.now + spec.expiresInDays * 86_400_000 : null,
        createdBy: by.caller.actor,
      }, { id: b.keyId, hash: b.secretHash });
    });
    return { revision, changed, key: result };
  }

  private applyRotateKey(b: RotateKeyBody, by: CommandActor): WriteResult & { key: ApiKey } {
    const { revision, changed, result } = this.deps.audited.write(by, { tenantId: b.tenantId, object: `api_key:${b.keyId}`, action: "api_key.rotate" }, (tx) => {
      this.requireKey(b.tenantId, b.keyId);
      const rotated = this.deps.apiKeys.rotate(tx, b.keyId, b.overlapSeconds * 1000, by.caller.actor, { id: b.newKeyId, hash: b.secretHash });
      if (!rotated) throw new BulkheadError("ADMIN_CONFLICT", `key_id: '${b.keyId}' is revoked, expired or already rotated; rotate its replacement`, "key_id");
      return rotated;
    });
    return { revision, changed, key: result };
  }

  private applyRevokeKey(tenantId: string, keyId: string, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId, object: `api_key:${keyId}`, action: "api_key.revoke" }, (tx) => {
      this.requireKey(tenantId, keyId);
      this.deps.apiKeys.revoke(tx, tenantId, keyId);
    });
  }

  private applyPutStaff(member: StaffMember, tokenHash: string | null, by: CommandActor): WriteResult & { tokenUsed: boolean } {
    const { revision, changed, result } = this.deps.audited.write(by, { tenantId: null, object: `staff:${member.id}`, action: "staff.put" }, (tx) => {
      const current = this.deps.staff.get(member.id);
      if (current && tokenHash === null && current.name === member.name && current.role === member.role && current.status === member.status) return false;
      if (!current && tokenHash === null) throw new BulkheadError("ADMIN_CONFLICT", `staff_id: '${member.id}' is new and needs a token; send the write again`, "staff_id");
      this.deps.staff.put(tx, member, tokenHash);
      // A session was granted to the person in their old role; a new role (or none) starts from nothing.
      if (current && (current.role !== member.role || member.status !== "active")) this.deps.impersonations.endAllForStaff(tx, member.id);
      return tokenHash !== null;
    });
    return { revision, changed, tokenUsed: result };
  }

  private applyStartImpersonation(b: StartImpersonationBody, by: CommandActor): WriteResult & { session: ImpersonationSession } {
    const target = { tenantId: b.tenantId, object: `impersonation:${b.tenantId}/${b.asActorId}`, action: "impersonation.start" };
    const { revision, changed, result } = this.deps.audited.write(by, target, (tx) => {
      this.requireLiveTenant(b.tenantId);
      const member = this.deps.directory.membership(b.tenantId, b.asActorId);
      if (member?.status !== "active") throw invalidArgument("as_actor_id", `'${b.asActorId}' is not an active member of ${b.tenantId}`);
      const spec = { staffId: b.staffId, tenantId: b.tenantId, asActorId: b.asActorId, reason: by.reason, expiresAt: tx.now + b.ttlSeconds * 1000 };
      return this.deps.impersonations.start(tx, spec, b.sessionId);
    });
    return { revision, changed, session: result };
  }

  private applyEndImpersonation(b: EndImpersonationBody, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId: b.tenantId, object: `impersonation:${b.sessionId}`, action: "impersonation.end" }, (tx) => {
      const session = this.deps.impersonations.get(b.sessionId);
      if (!session || session.tenantId !== b.tenantId) throw new BulkheadError("ADMIN_NOT_FOUND", `session_id: no session '${b.sessionId}' in ${b.tenantId}`, "session_id");
      if (!b.anySession && session.staffId !== b.staffId) {
        throw new BulkheadError("ADMIN_FORBIDDEN", "only the staff member who started a session (or the bootstrap credential) may end it");
      }
      this.deps.impersonations.end(tx, session);
    });
  }

  private applyExpireBreakGlass(now: number): WriteResult & { expired: number } {
    let last = { revision: 0, changed: false };
    let expired = 0;
    for (const grant of this.deps.approvals.dueToExpire(now)) {
      last = this.deps.audited.write(EXPIRY_ACTOR, { tenantId: null, object: `break_glass:${grant.id}`, action: "break_glass.expired" }, (tx) => {
        if (this.deps.approvals.markExpired(tx, grant.id)) expired++;
      });
      this.deps.breakGlass.warn("expired", grant);
    }
    return { ...last, expired };
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
