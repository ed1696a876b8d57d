import { createHash } from "node:crypto";
import { BulkheadError } from "../errors.js";
import { ulid } from "../ids.js";
import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { AdminCapability } from "./staff-roles.js";

export interface Approval {
  id: string;
  /** What is approved, e.g. `plan.put:pro`; a write must name exactly this. */
  action: string;
  requestedBy: string;
  reason: string;
  approvedBy: string | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  /** The approved content in canonical JSON; a write must carry exactly this. */
  contentJson: string;
  /** Opened alone by its requester in an emergency (ADR 54): spent like an approval, recorded in the break_glass trail. */
  breakGlass: boolean;
  /** Break-glass only: why the second person could not wait (beside the reason code in `reason`). */
  justification: string;
  /** Break-glass only: when its expiry unused was recorded (`break_glass.expired`). */
  expiredAt: number | null;
}

/** What the break-glass trail needs from the sidecar: who may still use a grant, and recording one being spent. */
export interface BreakGlassHooks {
  /** Whether `staff:<id>` may still use a grant they opened (active, role with break_glass). */
  stillAllowed(actor: string): boolean;
  /** Called inside the spending write's transaction: the `break_glass.used` audit row, log line. */
  used(tx: WriteScope, grant: Approval): void;
}

/**
 * JSON with object keys sorted at every depth, so the same content always
 * has the same bytes whatever order its fields were built in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * The exact action an approval covers: the verb, the object and the full
 * SHA-256 of the canonical content (`plan.put:pro@<64 hex>`), so an approval
 * for one change cannot carry another. A short digest is not enough: 48 bits
 * fall to a birthday search in a minute. Refusals name the action to request.
 */
/**
 * The write capability each approvable verb needs. The second person must be
 * able to make the change themselves (ADR 79): a finance member cannot
 * approve an engineer's flag rollout, nor an engineer a plan.
 */
export const APPROVABLE_VERB_CAPABILITY: Record<ApprovableChange["verb"], AdminCapability> = {
  "plan.put": "plans.write",
  "user.put": "directory.write",
  "flag.put": "flags.write",
};

/** The verb of an approval's action (`<verb>:<object>@<digest>`). */
export function approvalVerb(action: string): ApprovableChange["verb"] {
  return action.slice(0, action.indexOf(":")) as ApprovableChange["verb"];
}

export function approvalAction(verb: string, object: string, content: unknown): string {
  const digest = createHash("sha256").update(canonicalJson(content)).digest("hex");
  return `${verb}:${object}@${digest}`;
}

export const APPROVAL_ACTION = /^(plan\.put|user\.put):[A-Za-z0-9][A-Za-z0-9_.:-]*@[0-9a-f]{64}$/;

/** A global write that needs a second person: what it does, to what, with which content. */
export interface ApprovableChange {
  verb: "plan.put" | "user.put" | "flag.put";
  object: string;
  content: unknown;
}

export function newApprovalId(now: number): string {
  return `apr_${ulid(now)}`;
}

const APPROVAL_COLUMNS = `id, action, requested_by AS requestedBy, reason, approved_by AS approvedBy, created_at AS createdAt,
  expires_at AS expiresAt, used_at AS usedAt, content_json AS contentJson, break_glass AS breakGlass, justification, expired_at AS expiredAt`;

type ApprovalRow = Omit<Approval, "breakGlass"> & { breakGlass: number };
const fromRow = (row: ApprovalRow): Approval => ({ ...row, breakGlass: row.breakGlass === 1 });

/** How long an approval can wait to be given and used. */
export const APPROVAL_TTL_MS = 30 * 60_000;

/**
 * The two-person rule for global (all_tenants) admin writes: one staff
 * member requests an approval for one exact action, a different one approves
 * it, and the requester spends it once, before it expires.
 */
export class Approvals {
  private readonly stmt;

  constructor(
    db: Db,
    /** Whether an approver (`staff:<id>`) may still approve when the approval is spent. */
    private readonly stillApprover: (actor: string) => boolean,
    private readonly breakGlass: BreakGlassHooks = { stillAllowed: () => false, used: () => {} },
  ) {
    this.stmt = {
      byId: db.prepare<[string], ApprovalRow>(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE id = ?`),
      insert: db.prepare(
        `INSERT INTO approvals (id, action, requested_by, reason, created_at, expires_at, content_json)
         VALUES (@id, @action, @requestedBy, @reason, @createdAt, @expiresAt, @contentJson)`,
      ),
      insertBreakGlass: db.prepare(
        `INSERT INTO approvals (id, action, requested_by, reason, approved_by, created_at, expires_at, content_json, break_glass, justification)
         VALUES (@id, @action, @requestedBy, @reason, @approvedBy, @createdAt, @expiresAt, @contentJson, 1, @justification)`,
      ),
      // Break-glass grants are not in the two-person queue: nobody else is asked.
      pending: db.prepare<[number], ApprovalRow>(
        `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE used_at IS NULL AND expires_at > ? AND break_glass = 0 ORDER BY created_at, id`,
      ),
      breakGlassLog: db.prepare<[number], ApprovalRow>(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE break_glass = 1 ORDER BY created_at DESC, id DESC LIMIT ?`),
      dueToExpire: db.prepare<[number], ApprovalRow>(
        `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE break_glass = 1 AND used_at IS NULL AND expired_at IS NULL AND expires_at <= ? ORDER BY created_at, id`,
      ),
      markExpired: db.prepare("UPDATE approvals SET expired_at = ? WHERE id = ? AND break_glass = 1 AND used_at IS NULL AND expired_at IS NULL"),
      approve: db.prepare("UPDATE approvals SET approved_by = ? WHERE id = ? AND approved_by IS NULL"),
      use: db.prepare("UPDATE approvals SET used_at = ? WHERE id = ? AND used_at IS NULL"),
    };
  }

  /** Records a request for one change; `change` is the content exactly as it will be written. */
  /** `id` is made by the sidecar that takes the call (a ULID's random part differs per sidecar), so every sidecar stores the same one. */
  request(tx: WriteScope, change: ApprovableChange, requestedBy: string, reason: string, id = newApprovalId(tx.now)): Approval {
    const approval: Approval = {
      id, action: approvalAction(change.verb, change.object, change.content), requestedBy, reason, approvedBy: null,
      createdAt: tx.now, expiresAt: tx.now + APPROVAL_TTL_MS, usedAt: null, contentJson: canonicalJson(change.content),
      breakGlass: false, justification: "", expiredAt: null,
    };
    this.stmt.insert.run(approval);
    tx.noted("approval");
    return approval;
  }

  /**
   * Opens a break-glass grant: an approval for exactly `change`, approved
   * by its own opener, that only they can spend, once, within `ttlMs`.
   */
  openBreakGlass(tx: WriteScope, change: ApprovableChange, openedBy: string, reason: string, justification: string, ttlMs: number, id: string): Approval {
    const grant: Approval = {
      id, action: approvalAction(change.verb, change.object, change.content), requestedBy: openedBy, reason, approvedBy: openedBy,
      createdAt: tx.now, expiresAt: tx.now + ttlMs, usedAt: null, contentJson: canonicalJson(change.content),
      breakGlass: true, justification, expiredAt: null,
    };
    this.stmt.insertBreakGlass.run(grant);
    tx.noted("approval");
    return grant;
  }

  /** Break-glass grants, newest first, used or not: the trail's own view. */
  breakGlassLog(limit: number): Approval[] {
    return this.stmt.breakGlassLog.all(limit).map(fromRow);
  }

  /** Grants past their expiry, never used, whose expiry is not yet recorded. */
  dueToExpire(now: number): Approval[] {
    return this.stmt.dueToExpire.all(now).map(fromRow);
  }

  /** Records that a grant expired unused; false when it was used or already recorded. */
  markExpired(tx: WriteScope, id: string): boolean {
    if (this.stmt.markExpired.run(tx.now, id).changes === 0) return false;
    tx.noted("approval");
    return true;
  }

  approve(tx: WriteScope, id: string, approver: string): Approval {
    const approval = this.live(id, tx.now);
    if (approval.breakGlass) throw denied("approval_id", "is a break-glass grant: it needs no second person and cannot be approved");
    if (approval.requestedBy === approver) throw denied("approval_id", "the approver must be a different person from the requester");
    if (approval.approvedBy !== null) throw denied("approval_id", `already approved by ${approval.approvedBy}`);
    this.stmt.approve.run(approver, id);
    tx.noted("approval");
    return { ...approval, approvedBy: approver };
  }

  /** What an approval covers, for the approver to read before approving. */
  get(id: string): Approval {
    const approval = this.stmt.byId.get(id);
    if (!approval) throw new BulkheadError("ADMIN_NOT_FOUND", `approval_id: no approval '${id}'`, "approval_id");
    return fromRow(approval);
  }

  /** The queue: every approval not yet used nor expired (approved or still waiting), oldest first. */
  pending(now: number): Approval[] {
    return this.stmt.pending.all(now).map(fromRow);
  }

  /** Spends an approval on `change` by `requester`; throws unless it is approved, unused, unexpired and covers exactly this content. */
  spend(tx: WriteScope, id: string, change: ApprovableChange, requester: string): Approval {
    const action = approvalAction(change.verb, change.object, change.content);
    if (!id) throw denied("approval_id", `'${action}' changes every tenant: set all_tenants and an approval_id approved by a second staff member`);
    const approval = this.live(id, tx.now);
    // The stored content is compared too, not only its digest: the approval covers these bytes and no others.
    if (approval.action !== action || approval.contentJson !== canonicalJson(change.content)) {
      throw denied("approval_id", `approves '${approval.action}', not '${action}' (the change differs from what was approved)`);
    }
    if (approval.requestedBy !== requester) throw denied("approval_id", approval.breakGlass ? "is a break-glass grant opened by someone else" : "was requested by someone else");
    if (approval.breakGlass) {
      if (!this.breakGlass.stillAllowed(approval.requestedBy)) throw denied("approval_id", `its opener ${approval.requestedBy} is no longer active staff who may break glass`);
      this.stmt.use.run(tx.now, id);
      tx.noted("approval");
      const used = { ...approval, usedAt: tx.now };
      this.breakGlass.used(tx, used);
      return used;
    }
    if (approval.approvedBy === null) throw denied("approval_id", "has not been approved yet");
    if (!this.stillApprover(approval.approvedBy)) throw denied("approval_id", `its approver ${approval.approvedBy} is no longer active staff who may approve`);
    this.stmt.use.run(tx.now, id);
    tx.noted("approval");
    return approval;
  }

  private live(id: string, now: number): Approval {
    const approval = this.get(id);
    if (approval.usedAt !== null) throw denied("approval_id", "was already used");
    if (approval.expiresAt <= now) throw denied("approval_id", "has expired");
    return approval;
  }
}

function denied(field: string, problem: string): BulkheadError {
  return new BulkheadError("APPROVAL_REQUIRED", `${field}: ${problem}`, field);
}
