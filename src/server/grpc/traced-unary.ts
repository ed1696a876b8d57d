import { status, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { metadataCarrier, type Tracing } from "../../telemetry/tracing.js";

type UnaryHandler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

/**
 * Wraps a whole unary handler (the unary() wrapper with its auth check and
 * write retries) in one span, so a refused caller is traced too and a retried
 * write is one span, not one per attempt. The span is named after the gRPC
 * method (`bulkhead.v1.AdminService/PutTenant`). With tracing off the handler
 * is returned as it is: no wrapper runs at all.
 */
export function tracedUnary<Req, Res>(tracing: Tracing, handler: UnaryHandler<Req, Res>): UnaryHandler<Req, Res> {
  if (!tracing.enabled) return handler;
  return (call, callback) => {
    const rpc = call.getPath().replace(/^\//, "");
    void tracing.inSpan(rpc, metadataCarrier(call.metadata), (span) => {
      span.set({ "rpc.system": "grpc", "rpc.method": rpc });
      return new Promise<void>((answered) => {
        handler(call, (error, ...rest) => {
          if (error) span.fail(status[error.code ?? status.UNKNOWN] ?? "UNKNOWN");
          answered();
          callback(error, ...rest);
        });
      });
    });
  };
}
