import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import type { CallGate } from "./call-guard.js";
import { toGrpcError } from "./grpc-errors.js";
import { deadlineOf } from "./call-guard.js";
import { BulkheadError, isSqliteBusy } from "../../errors.js";
import { withWriteAttempt } from "../../store/write-attempt.js";
import { rejectUndecodable } from "./request-decoding.js";

/**
 * The wrapper every unary handler goes through: caller auth first, then the
 * handler; any throw is translated by the one error table. A handler can only
 * answer by returning, so no path reports success after a failure.
 *
 * `writes` says whether a request may commit a write; a call that says no
 * has its commits bounded by the process's, not counted (write-attempt.ts,
 * ADR 92), so a read pays for no AsyncLocalStorage. Every call may, unless
 * its handler says otherwise.
 */
export function unary<Req, Res>(
  auth: CallGate,
  handler: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
  writes: (request: Req) => boolean = ALWAYS,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const attempt = () => {
      auth.verify(call.metadata);
      rejectUndecodable(call.request);
      return handler(call.request, call);
    };
    retryWhileLocked(attempt, deadlineOf(call), writes(call.request)).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toGrpcError(error)),
    );
  };
}

const ALWAYS = () => true;

/** Longest a call keeps retrying a write that found the database locked (within its deadline). */
export const WRITE_RETRY_BUDGET_MS = 2_000;

/**
 * Runs a call, and runs it again, on timers (never blocking the event
 * loop), while it fails with STORE_BUSY having committed no write: another
 * process holds the write lock (`serve --workers` siblings under load, a
 * backup), and the call wrote nothing, so running it again repeats nothing.
 * Gives up with STORE_BUSY (UNAVAILABLE) at the call's deadline or after
 * WRITE_RETRY_BUDGET_MS, whichever is first.
 */
async function retryWhileLocked<T>(work: () => Promise<T> | T, deadline: number | undefined, counted: boolean): Promise<T> {
  const giveUpAt = Math.min(deadline ?? Infinity, Date.now() + WRITE_RETRY_BUDGET_MS);
  for (let delayMs = 5; ; delayMs = Math.min(delayMs * 2, 200)) {
    const { result, commits } = withWriteAttempt(() => Promise.resolve().then(work), counted);
    try {
      return await result;
    } catch (error) {
      const busy = (error instanceof BulkheadError && error.code === "STORE_BUSY") || isSqliteBusy(error);
      const wait = delayMs * (0.5 + Math.random()); // jitter: siblings retrying together would collide again
      if (!busy || commits() > 0 || Date.now() + wait >= giveUpAt) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
