import type { DecisionLog } from "../audit/decision-log.js";
import type { Clock } from "../clock.js";
import type { ContextResolver } from "../context/context-resolver.js";
import type { MemberContext, Principal, Resolution } from "../context/tenant-context.js";
import type { Reason } from "../engine/decision-result.js";
import { buildPolicyInput } from "../engine/policy-input.js";
import type { PolicyManager } from "../engine/policy-manager.js";
import { BulkheadError, wrapError } from "../errors.js";
import type { IdGenerator } from "../ids.js";
import type { Metrics } from "../metrics.js";
import type { ChangeTracker } from "../store/change-tracker.js";
import type { CheckInput } from "./check-input.js";

export interface Decision {
  allow: boolean;
  reasons: Reason[];
  decisionId: string;
  policyRevision: string;
  storeRevision: number;
  evaluatedAt: number;
  requestId: string;
}

/** A member's context plus the request-scoped fields ResolveContext reports. */
export interface ResolvedContext {
  principal: Principal;
  member: MemberContext;
  storeRevision: number;
}

export interface DeciderDeps {
  resolver: ContextResolver;
  policies: PolicyManager;
  tracker: ChangeTracker;
  decisionLog: DecisionLog;
  ids: IdGenerator;
  clock: Clock;
  metrics?: Pick<Metrics, "decisions" | "decisionErrors">;
  /** Longest wait for min_revision when the caller set no deadline. */
  revisionWaitMs?: number;
}

/**
 * The decision use case: honour min_revision, resolve the principal from the
 * store, evaluate the policy, log the decision. Every failure is a thrown,
 * coded error; nothing here can turn a failure into allow.
 */
export class Decider {
  constructor(private readonly deps: DeciderDeps) {}

  check(input: CheckInput, deadline?: number): Promise<Decision> {
    return this.counted(async () => {
      const storeRevision = await this.awaitRevision(input.minRevision, deadline);
      return this.decide(input, storeRevision);
    });
  }

  /** One revision wait for the whole batch, then plain evaluation per item. */
  checkMany(inputs: CheckInput[], deadline?: number): Promise<Decision[]> {
    return this.counted(async () => {
      const minRevision = Math.max(0, ...inputs.map((i) => i.minRevision));
      const storeRevision = await this.awaitRevision(minRevision, deadline);
      return inputs.map((input) => this.decide(input, storeRevision));
    });
  }

  /** NOT_FOUND, with the same message, for an unknown tenant and a non-member. */
  resolveContext(principal: Principal, minRevision: number, deadline?: number): Promise<ResolvedContext> {
    return this.counted(async () => {
      const storeRevision = await this.awaitRevision(minRevision, deadline);
      const resolution = this.resolve(principal);
      if (resolution.kind !== "member") {
        throw new BulkheadError("CONTEXT_NOT_FOUND", "no membership for this principal");
      }
      return { principal, member: resolution.context, storeRevision };
    });
  }

  private async counted<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const code = error instanceof BulkheadError ? error.code : "INTERNAL";
      this.deps.metrics?.decisionErrors.inc({ code });
      throw error;
    }
  }

  private decide(input: CheckInput, storeRevision: number): Decision {
    const policy = this.deps.policies.policy;
    const resolution = this.resolve(input.principal);
    let result;
    try {
      result = policy.evaluate(buildPolicyInput(input, resolution));
    } catch (error) {
      throw wrapError("POLICY_EVALUATION_FAILED", "policy evaluation failed", error);
    }
    const decision: Decision = {
      allow: result.allow,
      reasons: result.reasons,
      decisionId: this.deps.ids.decisionId(),
      policyRevision: policy.revision,
      storeRevision,
      evaluatedAt: this.deps.clock.now(),
      requestId: input.principal.requestId,
    };
    this.audit(input, resolution, decision);
    this.deps.metrics?.decisions.inc({ allow: String(decision.allow) });
    return decision;
  }

  private resolve(principal: Principal): Resolution {
    try {
      return this.deps.resolver.resolve(principal);
    } catch (error) {
      throw wrapError("STORE_FAILED", "reading the tenant context failed", error);
    }
  }

  /**
   * Resolves once the store has reached `minRevision` (read-your-writes) and
   * returns the revision decisions will be made at. Polls, because the write
   * may come from another process; gives up at the deadline, never allows.
   */
  private async awaitRevision(minRevision: number, deadline?: number): Promise<number> {
    const { tracker, clock } = this.deps;
    let revision = this.syncTracker();
    if (revision >= minRevision) return revision;
    const giveUpAt = Math.min(deadline ?? Infinity, clock.now() + (this.deps.revisionWaitMs ?? 2000));
    while (clock.now() < giveUpAt) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      revision = this.syncTracker();
      if (revision >= minRevision) return revision;
    }
    throw new BulkheadError(
      "STORE_REVISION_NOT_REACHED",
      `store is at revision ${tracker.revision}, request needs ${minRevision}`,
      "min_revision",
    );
  }

  private syncTracker(): number {
    try {
      return this.deps.tracker.sync();
    } catch (error) {
      throw wrapError("STORE_FAILED", "reading store changes failed", error);
    }
  }

  private audit(input: CheckInput, resolution: Resolution, decision: Decision): void {
    const p = input.principal;
    this.deps.decisionLog.record({
      decisionId: decision.decisionId,
      at: decision.evaluatedAt,
      tenantId: resolution.kind === "member" ? resolution.context.tenant.id : p.tenantId || p.tenantSlug,
      actorId: p.actorId,
      actorType: p.actorType,
      action: input.action,
      resourceType: input.resource.type,
      resourceId: input.resource.id,
      resourceTenantId: input.resource.tenantId,
      allow: decision.allow,
      reasons: decision.reasons.map((r) => r.code),
      policyRevision: decision.policyRevision,
      storeRevision: decision.storeRevision,
      requestId: p.requestId,
      source: p.source,
    });
  }
}
