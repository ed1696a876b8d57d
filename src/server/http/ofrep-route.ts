import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import { BulkheadError } from "../../errors.js";
import type { FlagEvaluation, FlagEvaluationResult } from "../../flags/flag-evaluation.js";
import { validateFlagQuery } from "../../flags/flag-input.js";
import type { Metrics } from "../../metrics.js";
import type { CallerAuth } from "../grpc/call-guard.js";
import { ofrepRetryAfterSeconds, type OfrepRateLimit } from "./ofrep-rate-limit.js";

export interface OfrepDeps {
  flags: FlagEvaluation;
  /** The caller tokens of every other surface: OFREP callers present the same. */
  auth: CallerAuth;
  rateLimit: OfrepRateLimit;
  metrics: Pick<Metrics, "ofrepRateLimited">;
  log: (message: string) => void;
}

/** OFREP's request-level error codes (open-feature/protocol, service/openapi.yaml). */
type OfrepErrorCode = "PARSE_ERROR" | "TARGETING_KEY_MISSING" | "INVALID_CONTEXT" | "GENERAL" | "FLAG_NOT_FOUND";

const BODY_LIMIT = 64 * 1024;

/**
 * OFREP on the HTTP port: POST /ofrep/v1/evaluate/flags/{key} and the bulk
 * POST /ofrep/v1/evaluate/flags. The tenant comes from `context.tenant_id`
 * and nothing else: no default tenant, no fallback, so a request without
 * one is INVALID_CONTEXT and can never receive another tenant's answer.
 * `targetingKey` names the actor (DESIGN.md section 8). Errors never carry a
 * value, so a client falls back to its own default (closed), and that
 * includes 429: a caller token past its rate gets no evaluation at all.
 */
export async function registerOfrep(app: FastifyInstance, deps: OfrepDeps): Promise<void> {
  await app.register(async (scope) => {
    // Our own parser, so malformed JSON is OFREP's PARSE_ERROR, not Fastify's error shape.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string", bodyLimit: BODY_LIMIT }, (_request, body, done) => done(null, body));

    scope.post<{ Params: { key: string } }>("/ofrep/v1/evaluate/flags/:key", async (request, reply) => {
      const key = request.params.key;
      return answer(reply, deps, request.headers.authorization, request.body, key, (results) => {
        const r = results[0]!;
        if (r.errorCode === "FLAG_NOT_FOUND") return reply.code(404).send({ key, errorCode: r.errorCode, errorDetails: r.errorMessage });
        if (r.errorCode) return reply.code(400).send({ key, errorCode: r.errorCode, errorDetails: r.errorMessage });
        return reply.code(200).send(success(r));
      });
    });

    scope.post("/ofrep/v1/evaluate/flags", async (request, reply) => {
      return answer(reply, deps, request.headers.authorization, request.body, undefined, (results) => {
        const body = { flags: results.map((r) => (r.errorCode ? { key: r.key, errorCode: r.errorCode, errorDetails: r.errorMessage } : success(r))) };
        const json = JSON.stringify(body);
        // The ETag is the answer's own hash: equal exactly when the caller's copy is still right.
        const etag = `"${createHash("sha256").update(json).digest("base64url").slice(0, 27)}"`;
        reply.header("etag", etag);
        if (ifNoneMatch(request.headers["if-none-match"], etag)) return reply.code(304).send();
        return reply.code(200).type("application/json").send(json);
      });
    });
  });
}

function answer(
  reply: FastifyReply,
  deps: OfrepDeps,
  authorization: unknown,
  rawBody: unknown,
  key: string | undefined,
  send: (results: FlagEvaluationResult[]) => FastifyReply,
): FastifyReply {
  const fail = (status: number, errorCode: OfrepErrorCode, errorDetails: string) =>
    reply.code(status).send({ ...(key !== undefined && { key }), errorCode, errorDetails });
  try {
    deps.auth.verifyBearer(authorization);
  } catch {
    return reply.code(401).send({ errorDetails: "missing or unknown caller token" });
  }
  const retryAfter = ofrepRetryAfterSeconds(deps.rateLimit, authorization);
  if (retryAfter > 0) {
    deps.metrics.ofrepRateLimited.inc();
    // Delta-seconds, not the spec's date-time example: immune to clock skew between sidecar and host (ADR 51).
    reply.header("retry-after", String(retryAfter));
    return fail(429, "GENERAL", `rate limit: this caller token may make ${deps.rateLimit.perMinute} OFREP requests a minute; retry after ${retryAfter} s`);
  }
  let body: unknown;
  try {
    body = JSON.parse(typeof rawBody === "string" && rawBody !== "" ? rawBody : "null");
  } catch {
    return fail(400, "PARSE_ERROR", "the body is not JSON");
  }
  const context = (body as { context?: unknown } | null)?.context;
  if (typeof context !== "object" || context === null || Array.isArray(context)) {
    return fail(400, "INVALID_CONTEXT", "context: must be an object holding tenant_id");
  }
  const { tenant_id: tenantId, targetingKey } = context as Record<string, unknown>;
  if (typeof tenantId !== "string" || tenantId === "") return fail(400, "INVALID_CONTEXT", "context.tenant_id: is required");
  if (targetingKey !== undefined && typeof targetingKey !== "string") return fail(400, "INVALID_CONTEXT", "context.targetingKey: must be a string");
  try {
    const query = validateFlagQuery(
      { tenantId, ...(targetingKey && { actorId: targetingKey }), keys: key === undefined ? [] : [key] },
      { tenant: "context.tenant_id", actor: "context.targetingKey", keys: "key" },
    );
    return send(deps.flags.evaluate(query.tenantId, query.actorId, query.keys));
  } catch (error) {
    if (error instanceof BulkheadError && error.code === "REQUEST_INVALID_ARGUMENT") {
      return error.field === "key" ? fail(404, "FLAG_NOT_FOUND", error.message) : fail(400, "INVALID_CONTEXT", error.message);
    }
    deps.log(`ofrep: evaluation failed: ${(error as Error).message}`);
    return reply.code(500).send({ errorDetails: "internal error; the flag is not evaluated" });
  }
}

function success(r: FlagEvaluationResult) {
  const m = r.metadata!;
  return {
    key: r.key,
    value: r.value,
    reason: r.reason,
    ...(r.variant !== undefined && { variant: r.variant }),
    metadata: {
      kind: m.kind,
      owner: m.owner,
      risk: m.risk,
      createdAt: new Date(m.createdAt).toISOString(),
      ...(m.cleanupAt !== null && { cleanupAt: new Date(m.cleanupAt).toISOString() }),
      ...(r.payload !== undefined && { payload: r.payload }),
    },
  };
}

function ifNoneMatch(header: unknown, etag: string): boolean {
  if (typeof header !== "string") return false;
  return header.split(",").some((t) => t.trim() === etag || t.trim() === "*" || t.trim() === `W/${etag}`);
}
