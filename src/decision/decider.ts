import type { DecisionLog, DecisionRecord } from "../audit/decision-log.js";
import type { Clock } from "../clock.js";
import type { ContextResolver } from "../context/context-resolver.js";
import type { MemberContext, Principal, Resolution } from "../context/tenant-context.js";
import { endedCall, type CallWindow, type CancelSignal } from "../engine/call-window.js";
import type { PolicyDecision, Reason } from "../engine/decision-result.js";
import { buildPolicyInput } from "../engine/policy-input.js";
import type { PolicySource } from "../engine/policy-source.js";
import { BulkheadError, invalidArgument, wrapError } from "../errors.js";
import type { IdGenerator } from "../ids.js";
import type { Metrics } from "../metrics.js";
import type { ChangeTracker } from "../store/change-tracker.js";
import type { RevisionWriter } from "../store/revision-writer.js";
import { idempotentWrite } from "../usage/idempotent-write.js";
import { RevisionWaiter } from "./revision-waiter.js";
import type { Metering } from "../usage/metering.js";
import type { UsageStore } from "../usage/usage-store.js";
import { POLICY_TIMEOUT, type PolicySet } from "../engine/policy-set.js";
import type { ApiKey, ApiKeyStore } from "../identity/api-keys.js";
import type { KeyRateLimiter } from "../identity/rate-limiter.js";
import type { FlagUsage } from "../flags/flag-usage.js";
import type { CheckInput } from "./check-input.js";
import type { DecisionCache } from "./decision-cache.js";
import type { ChargeBody, CheckCharges } from "./check-charge.js";
import { currentCallSpan } from "../telemetry/tracing.js";
import type { CallFields } from "../log/call-fields.js";

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

/** The decision log's action for a ResolveContext answered to an impersonating staff member. */
export const RESOLVE_CONTEXT_ACTION = "bulkhead.resolve_context";

export interface DeciderDeps {
  resolver: ContextResolver;
  policies: PolicySource;
  tracker: ChangeTracker;
  decisionLog: DecisionLog;
  writer: RevisionWriter;
  usage: UsageStore;
  metering: Metering;
  apiKeys: ApiKeyStore;
  rateLimiter: KeyRateLimiter;
  ids: IdGenerator;
  clock: Clock;
  metrics?: Pick<Metrics, "decisions" | "decisionErrors">;
  /** Told which flag each answered Check evaluated, for the stale report (ADR 52). */
  flagUsage?: Pick<FlagUsage, "saw">;
  /**
   * Re-check the tenant boundary in TypeScript after the policy (default on).
   * Only xtest and policy diff turn it off, because they test what a policy
   * alone would do.
   */
  boundaryGuard?: boolean;
  /** Longest wait for min_revision when the caller set no deadline. */
  revisionWaitMs?: number;
  /** Policy results of non-consuming Checks (ADR 68); absent = every Check evaluates. */
  decisionCache?: DecisionCache;
}

/**
 * The decision use case: honour min_revision, resolve the principal from the
 * store, evaluate the policy, log the decision. Every failure is a thrown,
 * coded error; nothing here can turn a failure into allow.
 */
export class Decider {
  /** Every min_revision wait shares one timer (ADR: one revision waiter). */
  readonly revisions = new RevisionWaiter(() => this.syncTracker());

  /** Replicated mode: a Check with consume charges through the change log (ADR 61). */
  private charges: CheckCharges | undefined;

  constructor(private readonly deps: DeciderDeps) {}

  /** Set once, before serving, when the sidecar runs on a change log. */
  chargeThroughLog(charges: CheckCharges): void {
    this.charges = charges;
  }

  /** Metrics come after construction because they read state from the parts they count. */
  attachMetrics(metrics: Pick<Metrics, "decisions" | "decisionErrors">): void {
    this.deps.metrics = metrics;
  }

  /** Counts a failed decision; also one BatchCheck item answered with an error instead of a decision. */
  countError(code: string): void {
    this.deps.metrics?.decisionErrors.inc({ code });
  }

  /** `fields`, when given, learns what the call's log line carries (the resolved plan, call-fields.ts). */
  check(input: CheckInput, deadline?: number, signal?: CancelSignal, fields?: CallFields): Promise<Decision> {
    const call = { deadline, signal, fields };
    return this.counted(async () => {
      const storeRevision = await this.awaitRevision(input.minRevision, deadline, signal);
      requireLive(call);
      const answers: DecisionRecord[] = [];
      const decision = await this.decide(input, storeRevision, answers, call);
      this.deliver(answers, call);
      return decision;
    });
  }

  /**
   * One revision wait for the whole batch, then plain evaluation per item.
   * A batch that consumes runs inside one write, so a failure on any item
   * (a reused key, a trap) rolls back every charge: the caller sees only
   * the error, and nothing was consumed for answers it never received. In
   * replicated mode that one write is one log entry (ADR 85).
   */
  checkMany(inputs: CheckInput[], deadline?: number, signal?: CancelSignal, fields?: CallFields): Promise<Decision[]> {
    const call = { deadline, signal, fields };
    return this.counted(async () => {
      const minRevision = Math.max(0, ...inputs.map((i) => i.minRevision));
      const storeRevision = await this.awaitRevision(minRevision, deadline, signal);
      requireLive(call);
      const answers: DecisionRecord[] = [];
      if (!inputs.some((i) => i.consume > 0)) {
        const decisions = await Promise.all(inputs.map((input) => this.decide(input, storeRevision, answers, call)));
        this.deliver(answers, call);
        return decisions;
      }
      if (this.charges) return this.decideManyThenCharge(inputs, storeRevision, call, this.charges);
      const decideAll = () => inputs.map((input) => this.decideInWrite(input, storeRevision, answers, call));
      const batch = this.guardStore(() =>
        this.deps.writer.write(() => {
          const decisions = decideAll();
          requireLive(call); // before the batch's charges commit
          return decisions;
        }),
      );
      this.deliver(answers);
      // Items decided inside the batch saw the revision it was about to commit;
      // if it committed nothing, that revision does not exist.
      return batch.result.map((d) => ({ ...d, storeRevision: Math.min(d.storeRevision, batch.revision) }));
    });
  }

  /**
   * The console's Check playground (ADR 90): the same freshness wait,
   * resolution, policy and boundary guard as a Check, on the live store and
   * policy, but nothing is consumed, logged, cached or rate-limited: an
   * explanation is not a decision anybody acted on. API keys are refused
   * (authenticating one would take from its token bucket), so is consume.
   */
  explain(input: CheckInput, deadline?: number): Promise<Decision> {
    // Not counted(): a refused explanation is no decision error in bulkhead_decision_errors_total.
    return (async () => {
      if (input.principal.apiKey) throw invalidArgument("principal.api_key", "is not explained: name the key's actor instead");
      if (input.consume > 0) throw invalidArgument("consume", "is not explained: nothing is charged here");
      const storeRevision = await this.awaitRevision(0, deadline);
      const policy = this.deps.policies.policy;
      const resolution = this.resolve(input.principal);
      let result;
      try {
        result = await policy.evaluateBudgeted(buildPolicyInput(input, resolution), { deadline });
      } catch (error) {
        throw wrapError("POLICY_EVALUATION_FAILED", "policy evaluation failed", error);
      }
      return this.guarded(input, resolution, result, policy, storeRevision);
    })();
  }

  /** NOT_FOUND, with the same message, for an unknown tenant and a non-member. */
  resolveContext(principal: Principal, minRevision: number, deadline?: number, signal?: CancelSignal, fields?: CallFields): Promise<ResolvedContext> {
    const call = { deadline, signal, fields };
    return this.counted(async () => {
      const storeRevision = await this.awaitRevision(minRevision, deadline, signal);
      const gate = this.gateApiKey(principal);
      if ("denied" in gate) throw new BulkheadError("CONTEXT_NOT_FOUND", "no membership for this principal");
      principal = gate.principal;
      const resolution = gate.key ? this.guardStore(() => this.deps.resolver.resolveForKey(gate.key!)) : this.resolve(principal);
      // Hosts gate on the returned permissions, so only an active member of an
      // active tenant gets a context; everyone else gets the same NOT_FOUND.
      if (
        resolution.kind !== "member" ||
        resolution.context.membership.status !== "active" ||
        resolution.context.tenant.status !== "active"
      ) {
        throw new BulkheadError("CONTEXT_NOT_FOUND", "no membership for this principal");
      }
      if (!resolution.context.impersonation) return { principal, member: resolution.context, storeRevision };
      const member = await this.impersonatedView(principal, resolution.context, call);
      const answers: DecisionRecord[] = [];
      this.auditContext(principal, member, storeRevision, answers, call);
      this.deliver(answers, call);
      return { principal, member, storeRevision };
    });
  }

  /**
   * What a staff member sees through an impersonation session: the member's
   * permissions minus every one that guards an action the policy would deny
   * with impersonation_restricted. The policy decides, not a copy of its rule
   * here, so ResolveContext can never grant what Check refuses. A permission
   * is kept only if every action it guards is allowed to the staff role.
   */
  private async impersonatedView(principal: Principal, member: MemberContext, call: CallWindow): Promise<MemberContext> {
    const policy = this.deps.policies.policy;
    const actions = Object.entries(policy.data.bulkhead.actions).filter(([, spec]) => spec.permission && member.permissions.includes(spec.permission));
    const results = await Promise.all(
      actions.map(([action]) =>
        policy.evaluateBudgeted(buildPolicyInput(contextInput(principal, action, member.tenant.id), { kind: "member", context: member }), call).catch((error: unknown) => {
          throw wrapError("POLICY_EVALUATION_FAILED", "policy evaluation failed", error);
        }),
      ),
    );
    // An evaluation that ran out of time keeps nothing: a permission survives only where the policy was seen to allow it.
    const restricted = new Set(
      actions.filter((_, i) => results[i]!.reasons.some((r) => r.code === "impersonation_restricted" || r.code === POLICY_TIMEOUT)).map(([, spec]) => spec.permission),
    );
    return { ...member, permissions: member.permissions.filter((p) => !restricted.has(p)) };
  }

  /** An impersonated context is an access to customer data: it goes to the decision log like a Check. */
  private auditContext(principal: Principal, member: MemberContext, storeRevision: number, answers: DecisionRecord[], call: LiveCall): void {
    const input = contextInput(principal, RESOLVE_CONTEXT_ACTION, member.tenant.id);
    const decision = this.finish(input, { allow: true, reasons: [] }, this.deps.policies.policy, storeRevision);
    answers.push(recordOf(input, { kind: "member", context: member }, decision, call));
  }

  private async counted<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      this.countError(error instanceof BulkheadError ? error.code : "INTERNAL");
      throw error;
    }
  }

  /**
   * Decides one check; its log entry goes to `answers`, which deliver() logs
   * once the answer is certain to be sent. The policy runs in the evaluation
   * pool, off this thread and within the budget (ADR 46); a check that
   * consumes is decided inside its write instead.
   */
  private async decide(raw: CheckInput, storeRevision: number, answers: DecisionRecord[], call: LiveCall): Promise<Decision> {
    if (raw.consume > 0) {
      return this.charges ? this.decideThenCharge(raw, storeRevision, answers, call, this.charges) : this.decideInWrite(raw, storeRevision, answers, call);
    }
    const policy = this.deps.policies.policy;
    const gate = this.gateApiKey(raw.principal);
    const input = { ...raw, principal: gate.principal };
    if ("denied" in gate) return this.deniedAtGate(input, gate.denied, policy, storeRevision, answers);
    const resolution = gate.key ? this.guardStore(() => this.deps.resolver.resolveForKey(gate.key!)) : this.resolve(input.principal);
    const result = await this.evaluateCached(input, resolution, policy, call);
    const decision = this.guarded(input, resolution, result, policy, storeRevision);
    answers.push(recordOf(input, resolution, decision, call));
    return decision;
  }

  /**
   * The policy's answer from the decision cache when it holds one for this
   * very context object, policy revision and request; else evaluated (and
   * kept). Errors throw before anything is kept, so none is ever cached.
   */
  private async evaluateCached(input: CheckInput, resolution: Resolution, policy: PolicySet, call: LiveCall): Promise<PolicyDecision> {
    const cache = this.deps.decisionCache;
    const key = cache?.keyOf(input, resolution, policy);
    const hit = key === undefined ? undefined : cache!.get(key);
    if (hit) return hit;
    let result;
    try {
      result = await policy.evaluateBudgeted(buildPolicyInput(input, resolution), call);
    } catch (error) {
      throw wrapError("POLICY_EVALUATION_FAILED", "policy evaluation failed", error);
    }
    if (key !== undefined) cache!.remember(key, resolution, result);
    return result;
  }

  /** decide() for a check inside a write (with consume, or an item of a consuming batch), which cannot await. */
  private decideInWrite(raw: CheckInput, storeRevision: number, answers: DecisionRecord[], call: LiveCall): Decision {
    const policy = this.deps.policies.policy;
    const gate = this.gateApiKey(raw.principal);
    const input = { ...raw, principal: gate.principal };
    if ("denied" in gate) return this.deniedAtGate(input, gate.denied, policy, storeRevision, answers);
    if (input.consume > 0) return this.decideAndConsume(input, policy, answers, call, gate.key);
    const resolution = gate.key ? this.guardStore(() => this.deps.resolver.resolveForKey(gate.key!)) : this.resolve(input.principal);
    const decision = this.evaluateInWrite(input, resolution, policy, storeRevision);
    answers.push(recordOf(input, resolution, decision, call));
    return decision;
  }

  private deniedAtGate(input: CheckInput, denied: PolicyDecision, policy: PolicySet, storeRevision: number, answers: DecisionRecord[]): Decision {
    const decision = this.finish(input, denied, policy, storeRevision);
    answers.push(recordOf(input, { kind: "non_member", tenantId: input.principal.tenantId }, decision));
    return decision;
  }

  /**
   * Logs and counts decisions that will be answered. With `call`, only while
   * the caller can still receive them: an evaluation that outlived the
   * deadline, or whose caller left, is neither answered nor logged (ADR 29).
   * Without it (a charge already committed), the answer is owed and logged.
   */
  private deliver(answers: DecisionRecord[], call?: LiveCall): void {
    if (call) requireLive(call);
    this.deps.decisionLog.together(() => {
      for (const record of answers) this.deps.decisionLog.record(record);
    });
    for (const record of answers) this.deps.metrics?.decisions.inc({ allow: String(record.allow) });
    if (this.deps.flagUsage) this.sawFlags(answers);
  }

  /** One map write per answered Check whose action is gated by a flag; the flush is FlagUsage's. */
  private sawFlags(answers: DecisionRecord[]): void {
    const policy = this.deps.policies.policy;
    for (const record of answers) {
      const flag = policy.flagOf(record.action);
      if (flag !== undefined) this.deps.flagUsage!.saw(flag);
    }
  }

  /**
   * An API-key principal is authenticated here, before any policy: the key
   * decides the tenant and the actor, a request claiming another tenant is
   * wrong_tenant, and each key has a token bucket. A key that does not
   * verify (unknown, revoked, expired, retired after rotation) is denied.
   */
  private gateApiKey(p: Principal): { principal: Principal; key?: ApiKey } | { principal: Principal; denied: PolicyDecision } {
    if (!p.apiKey) return { principal: p };
    const now = this.deps.clock.now();
    const key = this.guardStore(() => this.deps.apiKeys.authenticate(p.apiKey, now));
    const deny = (code: string, message: string) => ({
      principal: { ...p, actorId: key?.id ?? "", tenantId: p.tenantId || p.tenantSlug },
      denied: { allow: false, reasons: [{ code, message, details: {} }] } as PolicyDecision,
    });
    if (!key) return deny("api_key_invalid", "API key is unknown, revoked or expired");
    const claimed = p.tenantId || p.tenantSlug;
    const tenant = this.guardStore(() => this.deps.resolver.tenantOf(key.tenantId));
    if (claimed && claimed !== key.tenantId && claimed !== tenant?.slug) return deny("wrong_tenant", "API key belongs to another tenant");
    if (!this.deps.rateLimiter.take(key.id, key.ratePerMinute, now)) return deny("rate_limited", "API key rate limit exceeded");
    return { principal: { ...p, tenantId: key.tenantId, tenantSlug: "", actorId: key.id, actorType: "api_key" }, key };
  }


  /**
   * Check with `consume`: resolve, evaluate and charge the action's meter in
   * one IMMEDIATE write, so the usage the policy saw is the usage that gets
   * incremented, across every process sharing the database. A deny, for any
   * reason, charges nothing. Idempotency keys are looked up only for members
   * and are namespaced by the resolved tenant id, so they neither probe
   * other tenants nor double-charge through id/slug spellings; a retry is
   * re-evaluated first and gets the original decision only while it would
   * still be allowed, quota aside (the retry takes no unit).
   */
  private decideAndConsume(input: CheckInput, policy: PolicySet, answers: DecisionRecord[], call: LiveCall, key?: ApiKey): Decision {
    const p = input.principal;
    let resolution: Resolution = { kind: "non_member", tenantId: p.tenantId || p.tenantSlug };
    let fresh: Decision | undefined;
    const committed = this.guardStore(() =>
      this.deps.writer.write((tx) => {
        resolution = key ? this.deps.resolver.resolveForKeyUncached(key) : this.deps.resolver.resolveUncached(p);
        fresh = this.evaluateInWrite(input, resolution, policy, tx.revision);
        // Past this point the charge commits and the answer is owed; a caller
        // that has already left gets nothing charged and nothing logged.
        requireLive(call);
        if (resolution.kind !== "member") return { answer: fresh, replayed: false };
        const tenantId = resolution.context.tenant.id;
        // What makes two calls "the same request": who, what, on what, how much;
        // not how the tenant was spelled or the per-call request id.
        const request = { actor: [p.actorId, p.actorType], action: input.action, resource: input.resource, consume: input.consume };
        return idempotentWrite<Decision>(this.deps, { tenantId, key: input.idempotencyKey, operation: "check", request }, (tx2, replay) => {
          // A retry charges nothing, so the unit its original call took must not
          // deny it: limit_reached alone does not override the stored allow.
          // Any other deny (role lost, tenant suspended, ...) still wins.
          if (replay && fresh!.reasons.every((r) => r.code === "limit_reached")) return { answer: replay, keep: false, replayed: true };
          if (!fresh!.allow) return { answer: fresh!, keep: false };
          const meter = policy.data.bulkhead.actions[input.action]?.meter;
          if (!meter) return { answer: fresh!, keep: false };
          const state = this.deps.metering.stateFor(tenantId, meter, tx2.now);
          if (state.limit.kind === "seats") return { answer: fresh!, keep: false };
          this.deps.metering.charge(tx2, tenantId, state, input.consume);
          return { answer: fresh!, keep: true };
        });
      }),
    );
    // A fresh decision is as of the revision the write committed (or saw, when it charged nothing).
    const { answer, replayed } = committed.result;
    const decision = replayed ? answer : { ...answer, storeRevision: committed.revision };
    answers.push(recordOf(input, resolution, decision, call));
    return decision;
  }

  /**
   * Replicated mode's Check with consume (ADR 61). There is no write
   * transaction to evaluate in: the policy decides on this sidecar's state,
   * then the charge is a command on the meter's log subject that re-checks
   * the limit and the idempotency key where it lands in the log. So a Check
   * racing other sidecars for the last units is denied limit_reached rather
   * than overshooting, and a deny, for any reason, appends nothing.
   */
  private async decideThenCharge(raw: CheckInput, storeRevision: number, answers: DecisionRecord[], call: LiveCall, charges: CheckCharges): Promise<Decision> {
    const item = await this.decideForCharge(raw, storeRevision, call);
    let decision = item.decision;
    if (item.charge) {
      // Past this point the charge may be appended and the answer is owed.
      requireLive(call);
      decision = (await charges.charge(item.charge)).decision;
    }
    answers.push(recordOf(item.input, item.resolution, decision, call));
    return decision;
  }

  /**
   * Replicated mode's consuming BatchCheck (ADR 85): every item is decided on
   * this sidecar's state first (a consuming one as decideThenCharge does),
   * then the members' charges go to the log as one `check.charge-batch`
   * entry. So the batch stays one all-or-nothing write, as on a single node:
   * an item that fails to decide fails the call before anything is appended,
   * and one whose charge is refused where the entry lands (a reused key)
   * discards every charge of the batch.
   */
  private async decideManyThenCharge(inputs: CheckInput[], storeRevision: number, call: LiveCall, charges: CheckCharges): Promise<Decision[]> {
    const items = await Promise.all(inputs.map(async (input): Promise<BatchItemDecided> => {
      if (input.consume > 0) return this.decideForCharge(input, storeRevision, call);
      const records: DecisionRecord[] = [];
      return { decision: await this.decide(input, storeRevision, records, call), records };
    }));
    const bodies = items.flatMap((item) => ("charge" in item && item.charge ? [item.charge] : []));
    // Before anything is appended: past the append the answers are owed.
    requireLive(call);
    const charged = bodies.length > 0 ? await charges.chargeMany(bodies) : [];
    let next = 0;
    const answers: DecisionRecord[] = [];
    const decisions = items.map((item) => {
      if ("records" in item) {
        answers.push(...item.records);
        return item.decision;
      }
      const decision = item.charge ? charged[next++]!.decision : item.decision;
      answers.push(recordOf(item.input, item.resolution, decision, call));
      return decision;
    });
    this.deliver(answers);
    return decisions;
  }

  /**
   * A consuming Check decided on this sidecar's state, resolved uncached as in
   * a write (the usage the policy sees is the file's as of now). Settled here
   * when the gate denies or the principal is no member (nothing to append);
   * otherwise it carries the charge for the log, the policy's decision in it.
   */
  private async decideForCharge(raw: CheckInput, storeRevision: number, call: LiveCall): Promise<PreparedCharge> {
    const policy = this.deps.policies.policy;
    const gate = this.gateApiKey(raw.principal);
    const input = { ...raw, principal: gate.principal };
    if ("denied" in gate) {
      return { input, resolution: { kind: "non_member", tenantId: input.principal.tenantId }, decision: this.finish(input, gate.denied, policy, storeRevision) };
    }
    const resolution = this.guardStore(() => (gate.key ? this.deps.resolver.resolveForKeyUncached(gate.key) : this.deps.resolver.resolveUncached(input.principal)));
    let result;
    try {
      result = await policy.evaluateBudgeted(buildPolicyInput(input, resolution), call);
    } catch (error) {
      throw wrapError("POLICY_EVALUATION_FAILED", "policy evaluation failed", error);
    }
    const fresh = this.guarded(input, resolution, result, policy, storeRevision);
    if (resolution.kind !== "member") return { input, resolution, decision: fresh };
    const p = input.principal;
    const request = { actor: [p.actorId, p.actorType], action: input.action, resource: input.resource, consume: input.consume };
    const charge: ChargeBody = {
      tenantId: resolution.context.tenant.id, idempotencyKey: input.idempotencyKey, request, amount: input.consume,
      meter: policy.data.bulkhead.actions[input.action]?.meter ?? null, decision: fresh,
    };
    return { input, resolution, decision: fresh, charge };
  }

  /** Evaluates inside a write transaction: the thread waits for the synchronous lane for at most the budget (ADR 46). */
  private evaluateInWrite(input: CheckInput, resolution: Resolution, policy: PolicySet, storeRevision: number): Decision {
    let result;
    try {
      result = policy.evaluateInWrite(buildPolicyInput(input, resolution));
    } catch (error) {
      throw wrapError("POLICY_EVALUATION_FAILED", "policy evaluation failed", error);
    }
    return this.guarded(input, resolution, result, policy, storeRevision);
  }

  private guarded(input: CheckInput, resolution: Resolution, result: PolicyDecision, policy: PolicySet, storeRevision: number): Decision {
    const guarded = this.deps.boundaryGuard === false ? result : enforceBoundary(result, input, resolution);
    return this.finish(input, guarded, policy, storeRevision);
  }

  private finish(input: CheckInput, guarded: PolicyDecision, policy: PolicySet, storeRevision: number): Decision {
    const decision: Decision = {
      allow: guarded.allow,
      reasons: guarded.reasons,
      decisionId: this.deps.ids.decisionId(),
      policyRevision: policy.revision,
      storeRevision,
      evaluatedAt: this.deps.clock.now(),
      requestId: input.principal.requestId,
    };
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
   * returns the revision decisions will be made at. The write may come from
   * another process, so the shared RevisionWaiter polls the store's revision
   * on one timer for every waiting request; gives up at the deadline or when
   * `signal` aborts (the caller left), never allows.
   *
   * `deadline` is the call's gRPC deadline, epoch ms on the wall clock. The
   * wait is measured on the monotonic clock with real timers, never on the
   * injected Clock: that one is business time (windows, expiries), which a
   * test may hold still, and a wait measured on a still clock never ends.
   */
  async awaitRevision(minRevision: number, deadline?: number, signal?: CancelSignal): Promise<number> {
    const budgetMs = Math.min(deadline === undefined ? Infinity : deadline - Date.now(), this.deps.revisionWaitMs ?? 2000);
    return this.revisions.wait(minRevision, budgetMs, signal);
  }

  private syncTracker(): number {
    return this.guardStore(() => this.deps.tracker.sync());
  }
}

/** A consuming Check decided on this sidecar's state; `charge` is what the log still has to settle. */
interface PreparedCharge {
  input: CheckInput;
  resolution: Resolution;
  decision: Decision;
  charge?: ChargeBody;
}

/** One item of a replicated consuming batch: a consuming one, or a plain one decided with its log records. */
type BatchItemDecided = PreparedCharge | { decision: Decision; records: DecisionRecord[] };

/** What decides whether a call can still receive its answer (the evaluation pool checks the same before it evaluates). */
type LiveCall = CallWindow & { fields?: CallFields | undefined };

/**
 * Throws CALL_EXPIRED when nobody will receive the answer: evaluating (or
 * logging) it would spend work and leave an audit record of a decision no
 * caller got (ADR 29). The deadline is wall-clock like grpc-js's own.
 */
function requireLive(call: LiveCall): void {
  const ended = endedCall(call);
  if (ended) throw ended;
}

/** A decision's log entry: made when it is decided, logged by deliver() once it is certain to be answered. */
function recordOf(input: CheckInput, resolution: Resolution, decision: Decision, call?: LiveCall): DecisionRecord {
  const p = input.principal;
  // Every decided path passes here with its resolution: the one place the call's span learns tenant and plan.
  const tenantId = resolution.kind === "member" ? resolution.context.tenant.id : p.tenantId || p.tenantSlug;
  const plan = resolution.kind === "member" ? resolution.context.tenant.planCode : "";
  currentCallSpan().resolved(tenantId, plan);
  if (plan && call?.fields) call.fields.plan = plan;
  return {
    decisionId: decision.decisionId,
    at: decision.evaluatedAt,
    tenantId,
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
    impersonation: resolution.kind === "member" ? (resolution.context.impersonation ?? null) : null,
  };
}

/** A request about the tenant itself rather than one resource: what ResolveContext asks the policy. */
function contextInput(principal: Principal, action: string, tenantId: string): CheckInput {
  return { principal, action, minRevision: 0, consume: 0, idempotencyKey: "", resource: { type: "context", id: "", tenantId, ownerId: "", attributes: {} } };
}

/**
 * Defence in depth: whatever a policy says, an allow needs a member of the
 * principal's tenant acting on a resource of that tenant.
 */
function enforceBoundary(result: PolicyDecision, input: CheckInput, resolution: Resolution): PolicyDecision {
  if (!result.allow) return result;
  if (resolution.kind !== "member") {
    return { allow: false, reasons: [{ code: "not_a_member", message: "actor is not a member of the tenant", details: {} }] };
  }
  if (input.resource.tenantId !== resolution.context.tenant.id) {
    return { allow: false, reasons: [{ code: "wrong_tenant", message: "resource belongs to another tenant", details: {} }] };
  }
  return result;
}
