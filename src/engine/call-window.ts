import { BulkheadError } from "../errors.js";

/**
 * Whether the caller of a call left, and a way to hear when it does: an
 * AbortSignal is one; a unary gRPC call's is read off the call itself
 * (cancelSignalOf, ADR 92), with no AbortController per call.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/** What is known of the call an evaluation answers: its gRPC deadline (epoch ms, wall clock like grpc-js's) and whether the caller left. */
export interface CallWindow {
  deadline?: number | undefined;
  signal?: CancelSignal | undefined;
}

/**
 * Why a call must not be evaluated or answered any more (CALL_EXPIRED), or
 * undefined while it may be. A decision nobody receives would still be
 * logged as delivered, and under overload the work would only delay calls
 * that can still be answered (ADR 29).
 */
export function endedCall(call: CallWindow | undefined): BulkheadError | undefined {
  if (call?.signal?.aborted) return new BulkheadError("CALL_EXPIRED", "the caller cancelled the call before it was answered");
  if (call?.deadline !== undefined && Date.now() >= call.deadline) {
    return new BulkheadError("CALL_EXPIRED", "the call's deadline passed before it was answered; nothing was decided, charged or logged");
  }
  return undefined;
}
