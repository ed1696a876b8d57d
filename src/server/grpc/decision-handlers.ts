import type { ServerDuplexStream } from "@grpc/grpc-js";
import { LIMITS, validateCheck, validatePrincipal, validateRevision } from "../../decision/check-input.js";
import type { Decision, Decider } from "../../decision/decider.js";
import type { CheckInput } from "../../decision/check-input.js";
import { invalidArgument } from "../../errors.js";
import type { CheckRequest, CheckResponse, DecisionServiceServer } from "../../gen/bulkhead/v1/decision.js";
import { deadlineOf, type CallerAuth } from "./call-guard.js";
import { fromDecision, fromResolvedContext, toRawCheck } from "./decision-mapping.js";
import { rejectUndecodable } from "./request-decoding.js";
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

/** Most stream requests decided in one go before the event loop gets a turn. */
const STREAM_CHUNK = 64;

/**
 * Each request is answered carrying its principal.request_id. A bad request
 * or an internal failure ends the stream with that error: the stream's
 * contract has no "error item", and a caller must treat every unanswered
 * request as denied.
 *
 * Requests that arrive together (one HTTP/2 read often carries dozens) are
 * decided together through checkMany, like a BatchCheck: one store-revision
 * sync and one promise per chunk instead of per request. Requests that
 * consume or wait for a min_revision keep their own check(), so a batch
 * never turns into one all-or-nothing write or waits on another's token.
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
  let queue: CheckInput[] = [];
  let scheduled = false;
  const finishIfDone = () => {
    if (ended && pending === 0 && !failed) call.end();
  };
  const answer = (work: Promise<Decision[]>, count: number) =>
    work
      .then((decisions) => {
        if (!failed) for (const decision of decisions) call.write(fromDecision(decision));
      }, fail)
      .finally(() => {
        pending -= count;
        finishIfDone();
      });
  const flush = () => {
    scheduled = false;
    const chunk = queue.slice(0, STREAM_CHUNK);
    queue = queue.slice(STREAM_CHUNK);
    if (queue.length > 0) schedule();
    if (failed) return;
    void answer(decider.checkMany(chunk), chunk.length);
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };
  call.on("data", (request: CheckRequest) => {
    if (failed) return;
    let input: CheckInput;
    try {
      rejectUndecodable(request);
      input = validateCheck(toRawCheck(request));
    } catch (error) {
      fail(error);
      return;
    }
    pending++;
    if (input.consume > 0 || input.minRevision > 0) {
      void answer(decider.check(input).then((d) => [d]), 1);
      return;
    }
    queue.push(input);
    schedule();
  });
  call.on("end", () => {
    ended = true;
    finishIfDone();
  });
  call.on("error", () => {
    failed = true;
  });
}
