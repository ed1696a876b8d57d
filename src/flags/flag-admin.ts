import { adminCommand, commandActor, type AdminActor, type AdminBody, type AuditedWriter, type CommandActor, type WriteResult } from "../audit/audited-write.js";
import { BulkheadError } from "../errors.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { CommandKind, CommandRegistry } from "../store/store-command.js";
import type { ApprovableChange, Approvals } from "../identity/approvals.js";
import { isFullyOn } from "./flag-evaluator.js";
import type { FlagUsage } from "./flag-usage.js";
import { EXPECTED_LIFETIME_DAYS, type Flag, type FlagInput, type FlagStore } from "./flag-store.js";

const DAY = 24 * 60 * 60 * 1000;

/**
 * Flag writes: audited like every admin write (global: no tenant), and
 * read back by every process's next Check. Rolling a high-risk flag out to
 * everyone needs a second staff member's approval of exactly that flag; a
 * kill switch never does, so the on-call engineer can stop damage alone.
 */
export class FlagAdmin {
  /**
   * The writes as commands (ADR 60): a kill switch thrown on one sidecar is
   * an entry every sidecar applies, so the next Check anywhere (after its
   * min_revision) is denied. Applying re-runs the checks on the state at the
   * entry's place in the log.
   */
  private readonly kinds;

  constructor(
    private readonly deps: {
      audited: AuditedWriter; flags: FlagStore; approvals: Approvals; usage?: Pick<FlagUsage, "flush">;
      commands: CommandWriter; registry: CommandRegistry;
    },
  ) {
    const r = deps.registry;
    this.kinds = {
      put: r.register(adminCommand("flag.put", (tx, b: { flag: FlagInput; approvalId: string }, by) => this.applyPut(tx, b.flag, b.approvalId, by))),
      delete: r.register(adminCommand("flag.delete", (_tx, b: { key: string }, by) => this.applyDelete(b.key, by))),
      kill: r.register(adminCommand("flag.kill_switch", (_tx, b: { key: string; killed: boolean }, by) => this.applyKill(b.key, b.killed, by))),
    };
  }

  putFlag(flag: FlagInput, approvalId: string, by: AdminActor): Promise<WriteResult> {
    return this.run(this.kinds.put, { flag, approvalId }, by);
  }

  deleteFlag(key: string, by: AdminActor): Promise<WriteResult> {
    return this.run(this.kinds.delete, { key }, by);
  }

  setKillSwitch(key: string, killed: boolean, by: AdminActor): Promise<WriteResult> {
    return this.run(this.kinds.kill, { key, killed }, by);
  }

  /** The revision is the command's (the global one in replicated mode), so min_revision works on any sidecar. */
  private async run<B, R extends WriteResult>(kind: CommandKind<AdminBody<B>, R>, body: B, by: AdminActor): Promise<R> {
    const { result, revision } = await this.deps.commands.run(kind, { ...body, by: commandActor(by) });
    return { ...result, revision };
  }

  private applyPut(_tx: WriteScope, flag: FlagInput, approvalId: string, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId: null, object: `flag:${flag.key}`, action: "flag.put" }, (tx) => {
      const before = this.deps.flags.get(flag.key);
      // The kill switch belongs to SetKillSwitch: a PutFlag keeps whatever it is.
      const next = { ...flag, killed: before?.killed ?? false };
      // The kill switch is no part of the rollout: reviving needs no approval, so a
      // killed flag's rules are judged as they will be once revived (else Kill,
      // roll out to 100%, Revive takes it to everyone with no second person).
      if (needsSecondEngineer(before, next)) this.deps.approvals.spend(tx, approvalId, flagChange(flag), by.caller.actor);
      this.deps.flags.putFlag(tx, next);
    });
  }

  private applyDelete(key: string, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId: null, object: `flag:${key}`, action: "flag.delete" }, (tx) => {
      if (!this.deps.flags.deleteFlag(tx, key)) throw notFound(key);
    });
  }

  private applyKill(key: string, killed: boolean, by: CommandActor): WriteResult {
    return this.deps.audited.write(by, { tenantId: null, object: `flag:${key}`, action: killed ? "flag.kill" : "flag.unkill" }, (tx) => {
      if (!this.deps.flags.setKilled(tx, key, killed)) throw notFound(key);
    });
  }

  /** One flag as stored (the console's rollout form starts from it), or null. */
  find(key: string): Flag | null {
    return this.deps.flags.get(key);
  }

  get(key: string): Flag {
    const flag = this.find(key);
    if (!flag) throw notFound(key);
    return flag;
  }

  /**
   * Every flag with the reasons it needs cleanup (none = not stale). This
   * process's pending last-evaluated times are written first, so the report
   * does not miss what was evaluated here since the last flush.
   */
  list(now: number, unusedDays: number = DEFAULT_UNUSED_DAYS): { flag: Flag; staleReasons: string[] }[] {
    this.deps.usage?.flush();
    return this.deps.flags.all().map((flag) => ({ flag, staleReasons: staleReasons(flag, now, unusedDays) }));
  }
}

/** `flags stale` reports a flag nobody evaluated for this many days, unless told otherwise. */
export const DEFAULT_UNUSED_DAYS = 30;

/**
 * Past its cleanup date, fully on for longer than its type is expected to
 * live, or not evaluated for more than `unusedDays` (counted from its
 * creation when it was never evaluated: tracking began with migration 8).
 */
export function staleReasons(flag: Flag, now: number, unusedDays: number = DEFAULT_UNUSED_DAYS): string[] {
  const reasons: string[] = [];
  if (flag.cleanupAt !== null && flag.cleanupAt < now) reasons.push(`past its cleanup date ${new Date(flag.cleanupAt).toISOString().slice(0, 10)}`);
  const lifetime = EXPECTED_LIFETIME_DAYS[flag.kind];
  if (lifetime !== null && flag.fullyOnSince !== null && isFullyOn(flag) && now - flag.fullyOnSince > lifetime * DAY) {
    reasons.push(`fully on for ${Math.floor((now - flag.fullyOnSince) / DAY)} days, longer than a ${flag.kind} flag's ${lifetime}`);
  }
  const lastSeen = flag.lastEvaluatedAt ?? flag.createdAt;
  if (now - lastSeen > unusedDays * DAY) {
    const days = Math.floor((now - lastSeen) / DAY);
    reasons.push(flag.lastEvaluatedAt === null ? `never evaluated in the ${days} days since it was created` : `not evaluated for ${days} days`);
  }
  return reasons;
}

/** What a high-risk full rollout asks a second person to approve: the flag exactly as it will be stored. */
export function flagChange(flag: FlagInput): ApprovableChange {
  return { verb: "flag.put", object: flag.key, content: flag };
}

function notFound(key: string): BulkheadError {
  return new BulkheadError("ADMIN_NOT_FOUND", `key: no flag ${key}`, "key");
}

/**
 * The two-person rule for high-risk flags (ADR 49, tightened by ADR 79). A
 * second engineer's approval is needed when a PutFlag
 * - lowers a high-risk flag's risk class (else: lower it, roll out, raise it again, all alone);
 * - leaves a high-risk flag fully on (every percentage rule at 100%) and it was not, or
 *   was with other reach: other rules, environments or enabled state. Fully on for one
 *   plan is not fully on for all, so widening (emptying a plan or deny list) needs it,
 *   and so does narrowing, which is rare enough not to need its own rule.
 * The kill switch is no part of the rollout: reviving needs no approval, so a killed
 * flag is judged as it will be once revived (else Kill, 100%, Revive is a way around).
 */
type Reach = Pick<Flag, "risk" | "enabled" | "killed" | "rules"> & { environments?: readonly string[] };

export function needsSecondEngineer(before: Reach | null, next: Reach): boolean {
  if (before?.risk === "high" && next.risk !== "high") return true;
  if (next.risk !== "high") return false;
  const reaches = (f: Reach) => isFullyOn({ ...f, killed: false });
  if (!reaches(next)) return false;
  return !(before && reaches(before) && sameReach(before, next));
}

function sameReach(a: Reach, b: Reach): boolean {
  return a.enabled === b.enabled && JSON.stringify(a.rules) === JSON.stringify(b.rules) && JSON.stringify(a.environments ?? []) === JSON.stringify(b.environments ?? []);
}
