import { BulkheadError } from "../errors.js";

/** What is known of the call an evaluation answers: its gRPC deadline (epoch ms) and whether the caller left. */
export interface CallWindow {
  deadline?: number | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Why a call must not be evaluated any more, or undefined while it may be. A
 * decision nobody receives would still be logged as delivered, and under
 * overload the work would only delay calls that can still be answered.
 */
export function endedCall(call: CallWindow | undefined): BulkheadError | undefined {
  if (call?.signal?.aborted) return new BulkheadError("CALL_CANCELLED", "the caller cancelled the call before it was evaluated");
  if (call?.deadline !== undefined && Date.now() >= call.deadline) {
    return new BulkheadError("CALL_DEADLINE_EXCEEDED", "the call's deadline passed before it was evaluated");
  }
  return undefined;
}
