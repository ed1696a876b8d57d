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
  /** Why writes are refused for now because another process holds the write lock, or null. */
  writeLock: { readonly problem: string | null };
  /** Replicated mode: why this sidecar may not serve yet (catching up, applier stopped), or null. */
  replication?: () => string | null;
}

/**
 * The HTTP side: health, readiness and metrics. Later routes (the Stripe
 * webhook with its raw-body parser, AuthZEN, OFREP) register as their own
 * encapsulated plugins so transport concerns stay scoped to their route.
 */
export function createHttpServer(deps: HttpServerDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  // Live: the process answers. Reports degraded (a rejected bundle, a locked
  // store, an audit journal that cannot be written) without failing.
  app.get("/healthz", async () => {
    const audit = deps.decisionLog.stats;
    const fine = deps.policies.status.state === "ready" && deps.store.writable && deps.writeLock.problem === null && audit.problem === null;
    return {
      status: !deps.store.intact ? "failed" : fine ? "ok" : "degraded",
      policy: deps.policies.status,
      store: { intact: deps.store.intact, writable: deps.store.writable, problem: deps.store.problem, write_lock: deps.writeLock.problem },
      audit,
    };
  });

  // Ready: a policy is loaded, the store is open and writable, every decision
  // can be logged, and no shutdown has begun, so a load balancer may send
  // Checks. A write lock held by another process does not make it unready:
  // Checks are still answered. Not ready from the first moment of a drain.
  app.get("/readyz", async (_request, reply) => {
    const audit = deps.decisionLog.stats.problem;
    const replication = deps.replication?.() ?? null;
    const ready = deps.policies.status.revision !== null && deps.accepting() && audit === null && replication === null;
    return reply.code(ready ? 200 : 503).send({ ready, policy_revision: deps.policies.status.revision, ...(audit && { audit }), ...(replication && { replication }) });
  });

  app.get("/metrics", async (_request, reply) =>
    reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
  return app;
}
