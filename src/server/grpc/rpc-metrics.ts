import { ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";
import type { Metrics } from "../../metrics.js";

const DECISION_SERVICE = "/bulkhead.v1.DecisionService/";

/**
 * Counts and times every gRPC call at the server's edge, whatever its
 * handler: method and final status name, and for DecisionService the
 * result (a unary Check's allow or deny). An interceptor rather than code in
 * each handler, so a new RPC cannot be left out.
 */
export function rpcMetricsInterceptor(metrics: Pick<Metrics, "rpcRequests" | "rpcDuration" | "decisionDuration">): ServerInterceptor {
  return (method, call) => {
    const started = performance.now();
    let allow: boolean | undefined;
    return new ServerInterceptingCall(call, {
      sendMessage(message, next) {
        if (typeof (message as { allow?: unknown })?.allow === "boolean") allow = (message as { allow: boolean }).allow;
        next(message);
      },
      sendStatus(sent, next) {
        const seconds = (performance.now() - started) / 1000;
        const code = status[sent.code] ?? String(sent.code);
        metrics.rpcRequests.inc({ method: method.path, code });
        metrics.rpcDuration.observe({ method: method.path, code }, seconds);
        if (method.path.startsWith(DECISION_SERVICE)) {
          const result = code !== "OK" ? code : method.responseStream || allow === undefined ? "answered" : allow ? "allow" : "deny";
          metrics.decisionDuration.observe({ rpc: method.path.slice(DECISION_SERVICE.length), result }, seconds);
        }
        next(sent);
      },
    });
  };
}
