import type { Decider } from "../../decision/decider.js";
import { validateRevision } from "../../decision/check-input.js";
import type { FlagEvaluation, FlagEvaluationResult } from "../../flags/flag-evaluation.js";
import { validateFlagQuery } from "../../flags/flag-input.js";
import type { EvaluateFlagsRequest, EvaluateFlagsResponse, FlagEvaluation as FlagEvaluationMessage, FlagServiceServer } from "../../gen/bulkhead/v1/flags.js";
import { deadlineOf, type CallerAuth } from "./call-guard.js";
import { unary } from "./unary.js";

export interface FlagHandlerDeps {
  flags: FlagEvaluation;
  decider: Decider;
}

/** FlagService: caller token like every caller, min_revision like a Check, then the shared use case. */
export function flagHandlers(deps: FlagHandlerDeps, auth: CallerAuth): FlagServiceServer {
  return {
    evaluateFlags: unary(auth, (request, call) => evaluateFlagsAnswer(deps, request, deadlineOf(call))),
  };
}

/** EvaluateFlags from request to response, shared with the in-process transport so both answer alike. */
export async function evaluateFlagsAnswer(deps: FlagHandlerDeps, request: EvaluateFlagsRequest, deadline: number | undefined): Promise<EvaluateFlagsResponse> {
  const query = validateFlagQuery(
    { tenantId: request.tenantId, actorId: request.actorId, keys: request.flagKeys },
    { tenant: "tenant_id", actor: "actor_id", keys: "flag_keys" },
  );
  const storeRevision = await deps.decider.awaitRevision(validateRevision(request.minRevision, "min_revision"), deadline);
  const flags = deps.flags.evaluate(query.tenantId, query.actorId, query.keys).map(toMessage);
  return { flags, storeRevision };
}

function toMessage(r: FlagEvaluationResult): FlagEvaluationMessage {
  return {
    key: r.key,
    value: r.value,
    variant: r.variant ?? "",
    reason: r.reason,
    errorCode: r.errorCode ?? "",
    errorMessage: r.errorMessage ?? "",
    payload: r.payload ?? "",
    metadata: r.metadata && {
      kind: r.metadata.kind,
      owner: r.metadata.owner,
      risk: r.metadata.risk,
      createdAt: new Date(r.metadata.createdAt),
      cleanupAt: r.metadata.cleanupAt === null ? undefined : new Date(r.metadata.cleanupAt),
    },
  };
}
