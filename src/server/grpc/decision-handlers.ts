import type { ServerDuplexStream } from "@grpc/grpc-js";
import { validateCheck, validatePrincipal, validateRevision } from "../../decision/check-input.js";
import { decideBatch, type BatchItem } from "../../decision/batch-check.js";
import type { Decision, Decider } from "../../decision/decider.js";
import type { CheckInput } from "../../decision/check-input.js";
import { invalidArgument } from "../../errors.js";
import type { CheckRequest, CheckResponse, DecisionServiceServer } from "../../gen/bulkhead/v1/decision.js";
import { cancelSignalOf, deadlineOf, type CallerAuth } from "./call-guard.js";
import { fromBatchItem, fromDecision, fromResolvedContext, toRawCheck } from "./decision-mapping.js";
import { rejectUndecodable } from "./request-decoding.js";
import { toGrpcError } from "./grpc-errors.js";
import { unary } from "./unary.js";
import { tracedUnary } from "./traced-unary.js";
import { currentCallSpan, TRACING_OFF, type Tracing } from "../../telemetry/tracing.js";
import { callFieldsOf } from "../../log/call-fields.js";

/** Thin handlers: map, validate, call the Decider, map back. */
export function decisionHandlers(decider: Decider, auth: CallerAuth, tracing: Tracing = TRACING_OFF): DecisionServiceServer {
  return {
    check: tracedUnary(tracing, unary(auth, async (request: CheckRequest, call) => {
      const input = validateCheck(toRawCheck(request));
      const decision = await decider.check(input, deadlineOf(call), cancelSignalOf(call), callFieldsOf(call));
      if (tracing.enabled) currentCallSpan().set(decisionAttributes(input.action, decision));
      return fromDecision(decision);
    }, (request) => request.consume !== 0)),

    // Per-item answers: a malformed item gets its own error, the rest are decided (ADR 56).
    // Only a batch with a consuming item may write; an undecodable one (no checks) is counted as if it might.
    batchCheck: tracedUnary(tracing, unary(auth, async (request, call) => {
      const items = await decideBatch(decider, request.checks.map(toRawCheck), deadlineOf(call), cancelSignalOf(call), callFieldsOf(call));
      if (tracing.enabled) currentCallSpan().set(batchAttributes(request.checks.map((c) => c.action), items));
      return { results: items.map(fromBatchItem) };
    }, (request) => !Array.isArray(request.checks) || request.checks.some((c) => c.consume !== 0))),

    checkStream: (call) => serveCheckStream(decider, auth, call),

    resolveContext: tracedUnary(tracing, unary(auth, async (request, call) => {
      const principal = validatePrincipal(request.principal);
      const minRevision = validateRevision(request.minRevision, "min_revision");
      const resolved = await decider.resolveContext(principal, minRevision, deadlineOf(call), cancelSignalOf(call), callFieldsOf(call));
      if (tracing.enabled) currentCallSpan().resolved(resolved.member.tenant.id, resolved.member.tenant.planCode);
      return fromResolvedContext(resolved);
    }, NEVER_WRITES)),
  };
}

/** ResolveContext commits no write (an impersonated view goes to the decision log, not the store). */
const NEVER_WRITES = () => false;

/** Span attributes of one decision: what was asked and the answer; never the principal's credentials. */
function decisionAttributes(action: string, decision: Decision) {
  return {
    "bulkhead.action": action,
    "bulkhead.allow": decision.allow,
    "bulkhead.decision_id": decision.decisionId,
    "bulkhead.reasons": decision.reasons.map((r) => r.code).join(","),
  };
}

/** A batch's span: its size, how many were allowed, and the distinct actions (tenant and plan come from the decider). */
function batchAttributes(actions: string[], items: BatchItem[]) {
  return {
    "bulkhead.action": [...new Set(actions)].sort().join(","),
    "bulkhead.batch.size": items.length,
    "bulkhead.batch.allowed": items.filter((item) => "decision" in item && item.decision.allow).length,
  };
}

/** Most stream requests decided in one go before the event loop gets a turn. */
const STREAM_CHUNK = 64;

/**
 * Most requests one stream may have unanswered. Past it the server stops
 * reading the stream (HTTP/2 flow control then holds the client back) until
 * answers drain, so one stream cannot park thousands of min_revision waits.
 */
export const STREAM_PENDING_LIMIT = 256;

/**
 * Answers come back as they are decided, not in request order (a request
 * waiting on min_revision is answered after later ones), so every request
 * must carry a `principal.request_id` that no other unanswered request on
 * the stream uses; a missing or duplicate id ends the stream with
 * INVALID_ARGUMENT, so a host can never pair an answer with the wrong
 * request. A bad request or an internal failure ends the stream with that
 * error: the stream's contract has no "error item", and a caller must treat
 * every unanswered request as denied. When the stream fails or the client
 * cancels it, its min_revision waits are cancelled with it.
 *
 * Requests that arrive together (one HTTP/2 read often carries dozens) are
 * decided together through checkMany, like a BatchCheck: one store-revision
 * sync and one promise per chunk instead of per request. Requests that
 * consume or wait for a min_revision keep their own check(), so a batch
 * never turns into one all-or-nothing write or waits on another's token.
 */
function serveCheckStream(decider: Decider, auth: CallerAuth, call: ServerDuplexStream<CheckRequest, CheckResponse>): void {
  let failed = false;
  const cancel = new AbortController();
  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    cancel.abort();
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
  const fields = callFieldsOf(call);
  const unanswered = new Set<string>();
  let pending = 0;
  let paused = false;
  let ended = false;
  let queue: CheckInput[] = [];
  let scheduled = false;
  const finishIfDone = () => {
    if (ended && pending === 0 && !failed) call.end();
  };
  const answer = (work: Promise<Decision[]>, count: number) =>
    work
      .then((decisions) => {
        if (failed) return;
        for (const decision of decisions) {
          unanswered.delete(decision.requestId);
          call.write(fromDecision(decision));
        }
      }, fail)
      .finally(() => {
        pending -= count;
        if (paused && pending < STREAM_PENDING_LIMIT && !failed) {
          paused = false;
          call.resume();
        }
        finishIfDone();
      });
  const flush = () => {
    scheduled = false;
    const chunk = queue.slice(0, STREAM_CHUNK);
    queue = queue.slice(STREAM_CHUNK);
    if (queue.length > 0) schedule();
    if (failed) return;
    void answer(decider.checkMany(chunk, undefined, cancel.signal, fields), chunk.length);
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
      const id = input.principal.requestId;
      if (id === "") throw invalidArgument("principal.request_id", "is required on CheckStream: answers come back in completion order, matched by request_id");
      if (unanswered.has(id)) throw invalidArgument("principal.request_id", `${id} is already used by an unanswered request on this stream`);
      unanswered.add(id);
    } catch (error) {
      fail(error);
      return;
    }
    pending++;
    if (pending >= STREAM_PENDING_LIMIT && !paused) {
      paused = true;
      call.pause();
    }
    if (input.consume > 0 || input.minRevision > 0) {
      void answer(decider.check(input, undefined, cancel.signal, fields).then((d) => [d]), 1);
      return;
    }
    queue.push(input);
    schedule();
  });
  call.on("end", () => {
    ended = true;
    finishIfDone();
  });
  call.on("cancelled", () => {
    failed = true;
    cancel.abort();
  });
  call.on("error", () => {
    failed = true;
    cancel.abort();
  });
}
