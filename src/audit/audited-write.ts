import { BulkheadError, invalidArgument } from "../errors.js";
import type { AdminCapability, AdminCaller } from "../identity/staff-roles.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { RevisionWriter, WriteScope } from "../store/revision-writer.js";
import { objectBody, stringField, type CommandKind } from "../store/store-command.js";
import type { AdminAudit, AdminAuditRecord } from "./admin-audit.js";

/** Who does an admin write and why; all of it lands in admin_audit. */
export interface AdminActor {
  caller: AdminCaller;
  /** A configured reason code, optionally followed by ": free text". */
  reason: string;
  /** admin_api, cli, ... */
  source: string;
}

export interface WriteResult {
  revision: number;
  changed: boolean;
}

/** What one audited write is about: the tenant it is scoped to (null only for global writes), the object and the verb. */
export interface AuditTarget {
  tenantId: string | null;
  object: string;
  action: string;
}

/**
 * The one path for admin writes: one transaction that runs the change and,
 * if it changed anything, appends its admin_audit record. A write that
 * changes nothing commits nothing and audits nothing; one that throws
 * leaves no trace but its error.
 */
export class AuditedWriter {
  constructor(
    private readonly writer: RevisionWriter,
    private readonly audit: AdminAudit,
  ) {}

  write<T>(by: AdminActor | CommandActor, target: AuditTarget, mutate: (tx: WriteScope) => T): WriteResult & { result: T } {
    if (by.reason.trim() === "") throw invalidArgument("reason", "is required for every admin write");
    let changed = false;
    const { revision, result } = this.writer.write((tx) => {
      const value = mutate(trackingScope(tx, () => (changed = true)));
      if (changed) this.audit.record(tx, { actor: by.caller.actor, ...target, reason: by.reason, source: by.source, result: "ok" });
      return value;
    });
    return { revision, changed, result };
  }

  /**
   * Audits an access that changes nothing (a console tenant selection):
   * the admin_audit row is the whole write, so it commits no revision.
   */
  recordAccess(by: AdminActor | CommandActor, target: AuditTarget): void {
    if (by.reason.trim() === "") throw invalidArgument("reason", "is required for every audited access");
    this.writer.write((tx) => {
      this.audit.record(tx, { actor: by.caller.actor, ...target, reason: by.reason, source: by.source, result: "ok" });
      // History, not data: without it the row counts as an undeclared change to every tenant, which empties
      // every context and decision cache and shows hosts a change feed entry, once per audited read (ADR 90).
      tx.noted("admin_audit");
    });
  }

  /** A tenant's most recent admin actions, newest first. */
  recent(tenantId: string, limit: number): AdminAuditRecord[] {
    return this.audit.recent(tenantId, limit);
  }

  /** The most recent actions scoped to no tenant (flags, plans, approvals, staff), newest first. */
  recentGlobal(limit: number): AdminAuditRecord[] {
    return this.audit.recentGlobal(limit);
  }
}

/**
 * Who made an admin write, as a command carries it: what the audit row and
 * an approval need. The caller's capabilities were checked where the
 * command was made; applying it does not check them again.
 */
export interface CommandActor {
  caller: { actor: string };
  reason: string;
  source: string;
}

export function commandActor(by: AdminActor): CommandActor {
  return { caller: { actor: by.caller.actor }, reason: by.reason, source: by.source };
}

/** An admin command's body: its arguments and who made it. */
export type AdminBody<B> = B & { by: CommandActor };

/**
 * An audited admin write as a command (v1). The body is what the use case
 * passed, so decode checks only the envelope every admin write shares; the
 * use case's own checks run again when it is applied.
 */
export function adminCommand<B, R>(type: string, apply: (tx: WriteScope, body: B, by: CommandActor) => R): CommandKind<AdminBody<B>, R> {
  return {
    type,
    version: 1,
    decode(body) {
      const b = objectBody(body);
      const by = objectBody(b.by);
      const caller = objectBody(by.caller);
      stringField(caller, "actor");
      stringField(by, "reason");
      stringField(by, "source");
      return b as AdminBody<B>;
    },
    apply: (tx, body) => apply(tx, body, body.by),
  };
}

/**
 * Runs an admin command and answers with the command's revision (the global
 * one in replicated mode), so min_revision works on any sidecar.
 */
export async function runAdminCommand<B, R extends WriteResult>(commands: CommandWriter, kind: CommandKind<AdminBody<B>, R>, body: B, by: AdminActor): Promise<R> {
  const { result, revision } = await commands.run(kind, { ...body, by: commandActor(by) });
  return { ...result, revision };
}

/** Throws ADMIN_FORBIDDEN unless the caller holds the capability (or one of them). */
export function requireCapability(caller: Pick<AdminCaller, "kind" | "role" | "capabilities">, capability: AdminCapability | readonly AdminCapability[], what: string): void {
  const anyOf = typeof capability === "string" ? [capability] : capability;
  if (anyOf.some((c) => caller.capabilities.has(c))) return;
  const who = caller.role ? `staff role '${caller.role}'` : `the ${caller.kind} credential`;
  throw new BulkheadError("ADMIN_FORBIDDEN", `${who} may not ${what} (needs '${anyOf.join("' or '")}')`);
}

/** Passes writes through and notes that one happened, so no-op admin calls audit nothing. */
function trackingScope(tx: WriteScope, onChange: () => void): WriteScope {
  return {
    now: tx.now,
    revision: tx.revision,
    changed: (tenantId, kind) => {
      onChange();
      tx.changed(tenantId, kind);
    },
    noted: (kind) => {
      onChange();
      tx.noted(kind);
    },
  };
}
