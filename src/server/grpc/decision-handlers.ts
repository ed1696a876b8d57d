import type { ServerDuplexStream } from "@grpc/grpc-js";
import { LIMITS, validateCheck, validatePrincipal, validateRevision } from "../../decision/check-input.js";
import type { Decider } from "../../decision/decider.js";
import { invalidArgument } from "../../errors.js";
import type { CheckRequest, CheckResponse, DecisionServiceServer } from "../../gen/bulkhead/v1/decision.js";
import { deadlineOf, type CallerAuth } from "./call-guard.js";
import { fromDecision, fromResolvedContext, toRawCheck } from "./decision-mapping.js";
import { toGrpcError } from "./grpc-errors.js";
import { unary } from "./unary.js";

/** Thin handlers: map, validate, call the Decider, map back. */
export function decisionHandlers(decider: Decider, auth: CallerAuth): DecisionServiceServer {
  return {
    check: unary(auth, async (request: CheckRequest, call) =>
      fromDecision(await decider.check(validateCheck(toRawCheck(request)), deadlineOf(call))),
    ),

    batchCheck: unary(auth, async (request, call) => {
      if (request.checks.length > LIMITS.batchSize) {
        throw invalidArgument("checks", `at most ${LIMITS.batchSize} checks per call`);
      }
      // Validate everything before evaluating anything: one bad item fails the call.
      const inputs = request.checks.map((c, i) => validateCheck(toRawCheck(c), `checks[${i}].`));
      const decisions = await decider.checkMany(inputs, deadlineOf(call));
      return { results: decisions.map(fromDecision) };
    }),

    checkStream: (call) => serveCheckStream(decider, auth, call),

    resolveContext: unary(auth, async (request, call) => {
      const principal = validatePrincipal(request.principal);
      const minRevision = validateRevision(request.minRevision, "min_revision");
      return fromResolvedContext(await decider.resolveContext(principal, minRevision, deadlineOf(call)));
    }),
  };
}

/**
 * Each request is answered as soon as it is decided, carrying its
 * principal.request_id. A bad request or an internal failure ends the stream
 * with that error: the stream's contract has no "error item", and a caller
 * must treat every unanswered request as denied.
 */
function serveCheckStream(decider: Decider, auth: CallerAuth, call: ServerDuplexStream<CheckRequest, CheckResponse>): void {
  let failed = false;
  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    // grpc-js turns an emitted error into the stream's final status.
    const status = toGrpcError(error);
    call.emit("error", Object.assign(new Error(status.details), status));
  };
  try {
    auth.verify(call.metadata);
  } catch (error) {
    fail(error);
    return;
  }
  let pending = 0;
  let ended = false;
  const finishIfDone = () => {
    if (ended && pending === 0 && !failed) call.end();
  };
  call.on("data", (request: CheckRequest) => {
    if (failed) return;
    pending++;
    Promise.resolve()
      .then(() => decider.check(validateCheck(toRawCheck(request))))
      .then(
        (decision) => {
          if (!failed) call.write(fromDecision(decision));
        },
        fail,
      )
      .finally(() => {
        pending--;
        finishIfDone();
      });
  });
  call.on("end", () => {
    ended = true;
    finishIfDone();
  });
  call.on("error", () => {
    failed = true;
  });
}
