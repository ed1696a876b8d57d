import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import type { CallGate } from "./call-guard.js";
import { toGrpcError } from "./grpc-errors.js";
import { rejectUndecodable } from "./request-decoding.js";

/**
 * The wrapper every unary handler goes through: caller auth first, then the
 * handler; any throw is translated by the one error table. A handler can only
 * answer by returning, so no path reports success after a failure.
 */
export function unary<Req, Res>(
  auth: CallGate,
  handler: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    Promise.resolve()
      .then(() => {
        auth.verify(call.metadata);
        rejectUndecodable(call.request);
        return handler(call.request, call);
      })
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toGrpcError(error)),
      );
  };
}
