import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Decider } from "../../decision/decider.js";
import { DecisionServiceService } from "../../gen/bulkhead/v1/decision.js";
import { EntitlementServiceService } from "../../gen/bulkhead/v1/entitlements.js";
import { AdminServiceService } from "../../gen/bulkhead/v1/admin.js";
import { FlagServiceService } from "../../gen/bulkhead/v1/flags.js";
import { flagHandlers, type FlagHandlerDeps } from "./flag-handlers.js";
import { decodingErrorsAsRequests } from "./request-decoding.js";
import { UsageError } from "../../errors.js";
import { adminHandlers, type AdminHandlerDeps } from "./admin-handlers.js";
import { entitlementHandlers, type EntitlementHandlerDeps } from "./entitlement-handlers.js";
import { CallerAuth } from "./call-guard.js";
import { decisionHandlers } from "./decision-handlers.js";
import { addReflection } from "./reflection.js";
import { callEdgeInterceptor } from "./call-edge.js";
import type { Logger } from "../../log/logger.js";
import type { Metrics } from "../../metrics.js";
import type { Tracing } from "../../telemetry/tracing.js";

export const SERVICE_NAMES = ["bulkhead.v1.DecisionService", "bulkhead.v1.EntitlementService", "bulkhead.v1.AdminService", "bulkhead.v1.FlagService"] as const;

export interface GrpcServerDeps {
  decider: Decider;
  callerTokens: readonly string[];
  entitlements: EntitlementHandlerDeps;
  flags: FlagHandlerDeps;
  /** AdminService authenticates its own callers (AdminAuth), separately from the decision callers. */
  admin: AdminHandlerDeps;
  /** Per-call counts and latencies (rpc-metrics.ts), recorded by the call interceptor (call-edge.ts). */
  metrics?: Pick<Metrics, "rpcRequests" | "rpcDuration" | "decisionDuration">;
  /** A line per call (call-log.ts), by the same interceptor; without either, no interceptor runs. */
  logger?: Logger;
  /** Spans for Check, BatchCheck, ResolveContext and admin writes; absent = off. */
  tracing?: Tracing;
}

export interface GrpcServer {
  server: Server;
  health: HealthImplementation;
}

/** Builds the gRPC server: Bulkhead services, grpc.health.v1 and reflection (for grpcurl). */
export function createGrpcServer(deps: GrpcServerDeps): GrpcServer {
  const edge = callEdgeInterceptor({ metrics: deps.metrics, logger: deps.logger });
  const server = new Server({
    "grpc.max_receive_message_length": 4 * 1024 * 1024,
    interceptors: edge ? [edge] : [],
  });
  const auth = new CallerAuth(deps.callerTokens);
  server.addService(decodingErrorsAsRequests(DecisionServiceService), decisionHandlers(deps.decider, auth, deps.tracing));
  server.addService(decodingErrorsAsRequests(EntitlementServiceService), entitlementHandlers(deps.entitlements, auth));
  server.addService(decodingErrorsAsRequests(AdminServiceService), adminHandlers(deps.admin, deps.tracing));
  server.addService(decodingErrorsAsRequests(FlagServiceService), flagHandlers(deps.flags, auth));

  const health = new HealthImplementation({ "": "NOT_SERVING", ...Object.fromEntries(SERVICE_NAMES.map((s) => [s, "NOT_SERVING"])) });
  health.addToServer(server);

  addReflection(server);
  return { server, health };
}

/** Binds and resolves with the bound port (useful with port 0 in tests). */
export function bindGrpc(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (error, port) =>
      // A taken or unknown address is the operator's to fix: a usage error, no stack trace.
      error ? reject(new UsageError(`cannot bind gRPC on ${address} (BULKHEAD_GRPC_ADDR / --grpc-addr): ${error.message}`)) : resolve(port),
    );
  });
}
