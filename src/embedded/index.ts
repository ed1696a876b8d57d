/**
 * `bulkhead/embedded`: the same decision core the sidecar runs (engine,
 * store, metering), inside the host's process, behind the client's
 * {@link Transport} interface. Use it where a network hop is not wanted;
 * answers are the sidecar's answers for the same SQLite file
 * (test/e2e/client-transports.test.ts compares them case for case).
 * @packageDocumentation
 */
import { status } from "@grpc/grpc-js";
import type { Transport, TransportCallOptions } from "../client/transport.js";
import { createDecisionCore, type DecisionCore } from "../compose.js";
import { systemClock } from "../clock.js";
import { validatePrincipal, validateRevision, validateCheck } from "../decision/check-input.js";
import { decideBatch } from "../decision/batch-check.js";
import type { PutMembershipRequest, WriteResponse } from "../gen/bulkhead/v1/admin.js";
import type { BatchCheckRequest, BatchCheckResponse, CheckRequest, CheckResponse, ResolveContextRequest, TenantContext } from "../gen/bulkhead/v1/decision.js";
import type { ConsumeRequest, ConsumeResponse } from "../gen/bulkhead/v1/entitlements.js";
import type { EvaluateFlagsRequest, EvaluateFlagsResponse } from "../gen/bulkhead/v1/flags.js";
import { FlagEvaluation } from "../flags/flag-evaluation.js";
import { evaluateFlagsAnswer } from "../server/grpc/flag-handlers.js";
import { ulidGenerator } from "../ids.js";
import { PolicyManager } from "../engine/policy-manager.js";
import { DEFAULT_POLICY_DIR } from "../paths.js";
import { fromBatchItem, fromDecision, fromResolvedContext, toRawCheck } from "../server/grpc/decision-mapping.js";
import { fromMeterAnswer } from "../server/grpc/entitlement-mapping.js";
import { toGrpcError } from "../server/grpc/grpc-errors.js";
import { openDatabase, type Db } from "../store/database.js";
import { validateConsume } from "../usage/usage-input.js";

export type { Transport, TransportCallOptions } from "../client/transport.js";

/** Where the in-process core reads its store and policies. */
export interface EmbeddedOptions {
  /** The SQLite file (created and migrated when missing), the same kind of file a sidecar serves. */
  dbPath: string;
  /** Directory of the compiled policy bundle (default: the package's `dist/policies`). */
  policyDir?: string;
  /** Logger for reload and store messages (default: stderr). */
  log?: (message: string) => void;
}

/**
 * Opens the store, loads the policy bundle and returns a {@link Transport}
 * for `new BulkheadClient({ transport })`. Resolves once the first bundle has loaded.
 */
export async function createEmbeddedTransport(options: EmbeddedOptions): Promise<EmbeddedTransport> {
  const log = options.log ?? ((message: string) => console.error(`bulkhead embedded: ${message}`));
  const policies = new PolicyManager({ dir: options.policyDir ?? DEFAULT_POLICY_DIR, watch: false, log });
  await policies.start();
  const db = openDatabase(options.dbPath);
  const core = createDecisionCore(db, policies, { clock: systemClock, ids: ulidGenerator(systemClock), log });
  policies.onSwap(() => core.forgetCaches());
  return new EmbeddedTransport(db, core, policies);
}

/**
 * {@link Transport} over an in-process decision core. Validation, mapping and
 * error codes are the gRPC handlers' own, so a failure rejects with the same
 * `{ code, details }` a sidecar would send.
 */
export class EmbeddedTransport implements Transport {
  /** Built by {@link createEmbeddedTransport}. */
  private readonly flags: FlagEvaluation;

  constructor(private readonly db: Db, private readonly core: DecisionCore, private readonly policies: PolicyManager) {
    this.flags = new FlagEvaluation({ flags: core.stores.flags, subjects: core.resolver, usage: core.flagUsage });
    core.flagUsage.start();
  }

  /** One decision, as DecisionService.Check. */
  check(request: CheckRequest, options: TransportCallOptions): Promise<CheckResponse> {
    return coded(async () => fromDecision(await this.core.decider.check(validateCheck(toRawCheck(request)), options.deadline)));
  }

  /** Many decisions, as DecisionService.BatchCheck: a malformed item gets its own error (ADR 56). */
  batchCheck(request: BatchCheckRequest, options: TransportCallOptions): Promise<BatchCheckResponse> {
    return coded(async () => ({
      results: (await decideBatch(this.core.decider, request.checks.map(toRawCheck), options.deadline)).map(fromBatchItem),
    }));
  }

  /** A principal's trusted context, as DecisionService.ResolveContext. */
  resolveContext(request: ResolveContextRequest, options: TransportCallOptions): Promise<TenantContext> {
    return coded(async () => {
      const principal = validatePrincipal(request.principal);
      const minRevision = validateRevision(request.minRevision, "min_revision");
      return fromResolvedContext(await this.core.decider.resolveContext(principal, minRevision, options.deadline));
    });
  }

  /** A tenant's flags, as FlagService.EvaluateFlags. */
  evaluateFlags(request: EvaluateFlagsRequest, options: TransportCallOptions): Promise<EvaluateFlagsResponse> {
    return coded(() => evaluateFlagsAnswer({ flags: this.flags, decider: this.core.decider }, request, options.deadline));
  }

  /** Counts usage, as EntitlementService.Consume. */
  consume(request: ConsumeRequest): Promise<ConsumeResponse> {
    return coded(async () => {
      const answer = this.core.metering.consume(validateConsume(request));
      return { allowed: answer.allowed, reasons: answer.reasons, ...fromMeterAnswer(answer) };
    });
  }

  /**
   * Not offered in process: admin writes go through a sidecar's AdminService,
   * which authenticates staff and audits every write. Rejects with UNIMPLEMENTED.
   */
  putMembership(_request: PutMembershipRequest): Promise<WriteResponse> {
    return Promise.reject({ code: status.UNIMPLEMENTED, details: "putMembership needs a sidecar (AdminService); the in-process transport does not write memberships" });
  }

  /** Stops the policy loader, flushes the decision log and closes the store. */
  close(): void {
    // Terminating the workers is asynchronous; they are unref'd, so the host can exit meanwhile.
    void this.policies.close();
    this.core.fileGuard.stop();
    this.core.flagUsage.stop();
    this.core.decisionLog.close();
    this.db.close();
  }
}

/** Runs a handler body and turns any throw into the gRPC error the sidecar would send. */
async function coded<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw toGrpcError(error);
  }
}
