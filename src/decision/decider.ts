import type { DecisionLog } from "../audit/decision-log.js";
import type { Clock } from "../clock.js";
import type { ContextResolver } from "../context/context-resolver.js";
import type { MemberContext, Principal, Resolution } from "../context/tenant-context.js";
import type { Reason } from "../engine/decision-result.js";
import { buildPolicyInput } from "../engine/policy-input.js";
import type { PolicySource } from "../engine/policy-source.js";
import { BulkheadError, wrapError } from "../errors.js";
import type { IdGenerator } from "../ids.js";
import type { Metrics } from "../metrics.js";
import type { ChangeTracker } from "../store/change-tracker.js";
import type { RevisionWriter } from "../store/revision-writer.js";
import { idempotentWrite } from "../usage/idempotent-write.js";
import type { Metering } from "../usage/metering.js";
import type { UsageStore } from "../usage/usage-store.js";
import type { PolicySet } from "../engine/policy-set.js";
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
  policies: PolicySource;
  tracker: ChangeTracker;
  decisionLog: DecisionLog;
  writer: RevisionWriter;
  usage: UsageStore;
  metering: Metering;
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

  /** Metrics come after construction because they read state from the parts they count. */
  attachMetrics(metrics: Pick<Metrics, "decisions" | "decisionErrors">): void {
    this.deps.metrics = metrics;
  }

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
    if (input.consume > 0) return this.decideAndConsume(input, policy);
    const resolution = this.resolve(input.principal);
    const decision = this.evaluate(input, resolution, policy, storeRevision);
    this.audit(input, resolution, decision);
    return decision;
  }

  /**
   * Check with `consume`: resolve, evaluate and charge the action's meter in
   * one IMMEDIATE write, so the usage the policy saw is the usage that gets
   * incremented, across every process sharing the database. A deny, for any
   * reason, charges nothing; a retry with the same idempotency key gets the
   * original decision back.
   */
  private decideAndConsume(input: CheckInput, policy: PolicySet): Decision {
    const p = input.principal;
    let resolution: Resolution = { kind: "non_member", tenantId: p.tenantId || p.tenantSlug };
    const outcome = this.guardStore(() =>
      idempotentWrite(
        this.deps,
        { tenantId: p.tenantId || `slug:${p.tenantSlug}`, key: input.idempotencyKey, operation: "check", request: input },
        (tx) => {
          resolution = this.deps.resolver.resolveUncached(p);
          const decision = this.evaluate(input, resolution, policy, tx.revision);
          const meter = policy.data.bulkhead.actions[input.action]?.meter;
          if (!decision.allow || resolution.kind !== "member" || !meter) return { answer: decision, keep: false };
          const state = this.deps.metering.stateFor(resolution.context.tenant.id, meter, tx.now);
          if (state.limit.kind === "seats") return { answer: decision, keep: false };
          this.deps.metering.charge(tx, resolution.context.tenant.id, state, input.consume);
          return { answer: decision, keep: true };
        },
      ),
    );
    if (outcome.replayed) return outcome.answer;
    const decision = { ...outcome.answer, storeRevision: outcome.revision };
    this.audit(input, resolution, decision);
    return decision;
  }

  private evaluate(input: CheckInput, resolution: Resolution, policy: PolicySet, storeRevision: number): Decision {
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
    this.deps.metrics?.decisions.inc({ allow: String(decision.allow) });
    return decision;
  }

  /** Store throws become STORE_FAILED; coded errors pass through. */
  private guardStore<T>(work: () => T): T {
    try {
      return work();
    } catch (error) {
      throw wrapError("STORE_FAILED", "the store failed", error);
    }
  }

  private resolve(principal: Principal): Resolution {
    return this.guardStore(() => this.deps.resolver.resolve(principal));
  }

  /**
   * Resolves once the store has reached `minRevision` (read-your-writes) and
   * returns the revision decisions will be made at. Polls, because the write
   * may come from another process; gives up at the deadline, never allows.
   */
  async awaitRevision(minRevision: number, deadline?: number): Promise<number> {
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
    return this.guardStore(() => this.deps.tracker.sync());
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
