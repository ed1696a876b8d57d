import Fastify, { type FastifyInstance } from "fastify";
import type { PolicyManager } from "../../engine/policy-manager.js";
import type { Metrics } from "../../metrics.js";
import type { DecisionLog } from "../../audit/decision-log.js";

export interface HttpServerDeps {
  policies: PolicyManager;
  decisionLog: DecisionLog;
  metrics: Metrics;
  /** The store is open and intact and the sidecar is not shutting down. */
  accepting: () => boolean;
  /** Why the store cannot be used (its file deleted or replaced), for /healthz. */
  store: { readonly intact: boolean; readonly writable: boolean; readonly problem: string | null };
}

/**
 * The HTTP side: health, readiness and metrics. Later routes (the Stripe
 * webhook with its raw-body parser, AuthZEN, OFREP) register as their own
 * encapsulated plugins so transport concerns stay scoped to their route.
 */
export function createHttpServer(deps: HttpServerDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  // Live: the process answers. Reports degraded (a rejected bundle) without failing.
  app.get("/healthz", async () => ({
    status: !deps.store.intact ? "failed" : deps.policies.status.state === "ready" && deps.store.writable ? "ok" : "degraded",
    policy: deps.policies.status,
    store: { intact: deps.store.intact, writable: deps.store.writable, problem: deps.store.problem },
    audit: deps.decisionLog.stats,
  }));

  // Ready: a policy is loaded, the store is open and no shutdown has begun, so
  // a load balancer may send Checks. Not ready from the first moment of a drain.
  app.get("/readyz", async (_request, reply) => {
    const ready = deps.policies.status.revision !== null && deps.accepting();
    return reply.code(ready ? 200 : 503).send({ ready, policy_revision: deps.policies.status.revision });
  });

  app.get("/metrics", async (_request, reply) =>
    reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
  return app;
}
