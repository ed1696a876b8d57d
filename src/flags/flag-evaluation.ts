import { evaluateFlagDetails, type FlagDetails, type FlagSubject } from "./flag-evaluator.js";
import type { Flag, FlagStore } from "./flag-store.js";
import type { FlagUsage } from "./flag-usage.js";

/** What a flag says about itself next to its value (OpenFeature's flag metadata). */
export interface FlagMetadata {
  kind: Flag["kind"];
  owner: string;
  risk: Flag["risk"];
  createdAt: number;
  cleanupAt: number | null;
}

export interface FlagEvaluationResult extends Omit<FlagDetails, "errorCode"> {
  errorCode?: FlagDetails["errorCode"] | "FLAG_NOT_FOUND";
  metadata?: FlagMetadata;
}

export interface FlagEvaluationDeps {
  flags: FlagStore;
  subjects: { flagSubject(tenantId: string, actorId?: string): FlagSubject };
  /** Told which flags were answered, for the stale report (ADR 52). */
  usage?: Pick<FlagUsage, "saw">;
}

/**
 * The one use case behind FlagService.EvaluateFlags and OFREP: a tenant's
 * (and optionally an actor's) flags with OpenFeature-style details, read
 * from the store on every call so a kill switch is seen at once. The tenant
 * is always the caller's explicit choice; nothing here falls back to one.
 */
export class FlagEvaluation {
  constructor(private readonly deps: FlagEvaluationDeps) {}

  /** Every flag when `keys` is empty; a named key that does not exist answers FLAG_NOT_FOUND. */
  evaluate(tenantId: string, actorId: string | undefined, keys: readonly string[] = []): FlagEvaluationResult[] {
    const subject = this.deps.subjects.flagSubject(tenantId, actorId);
    const flags = keys.length === 0 ? this.deps.flags.all() : keys.map((k) => this.deps.flags.get(k) ?? k);
    return flags.map((flag) => {
      if (typeof flag === "string") return { key: flag, value: false, reason: "ERROR", errorCode: "FLAG_NOT_FOUND", errorMessage: `flag ${flag} does not exist` };
      this.deps.usage?.saw(flag.key);
      return { ...evaluateFlagDetails(flag, subject), metadata: metadataOf(flag) };
    });
  }
}

function metadataOf(flag: Flag): FlagMetadata {
  return { kind: flag.kind, owner: flag.owner, risk: flag.risk, createdAt: flag.createdAt, cleanupAt: flag.cleanupAt };
}
