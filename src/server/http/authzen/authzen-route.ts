import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Decider } from "../../../decision/decider.js";
import { LIMITS } from "../../../decision/check-input.js";
import { BulkheadError, invalidArgument } from "../../../errors.js";
import type { CallerAuth } from "../../grpc/call-guard.js";
import { checkId } from "../../../validation.js";
import { asBulkheadError, errorBody, httpStatusOf } from "../http-errors.js";
import { failedItem, requestIdOf, toCheckInput, toEvaluationResponse, type AuthzenTenancy } from "./authzen-check.js";
import {
  complete,
  EVALUATION_FIELDS,
  isObject,
  mergeItem,
  readParts,
  readSemantic,
  requireFields,
  type EvaluationParts,
} from "./authzen-request.js";
import { searchActions, searchResources, searchSubjects, type SearchDeps } from "./authzen-search.js";

export interface AuthzenDeps extends Omit<SearchDeps, "decide"> {
  decider: Pick<Decider, "check">;
  /** The caller tokens of every other surface: AuthZEN callers present the same. */
  auth: CallerAuth;
  log: (message: string) => void;
}

const BODY_LIMIT = 1024 * 1024;

export const AUTHZEN_PATHS = {
  access_evaluation_endpoint: "/access/v1/evaluation",
  access_evaluations_endpoint: "/access/v1/evaluations",
  search_subject_endpoint: "/access/v1/search/subject",
  search_resource_endpoint: "/access/v1/search/resource",
  search_action_endpoint: "/access/v1/search/action",
} as const;

/** A per-tenant PDP (ADR 70): the same endpoints under `/t/{tenant}`, its metadata at the well-known URL with that path. */
export const TENANT_PATH = "/t/:tenant";
const METADATA_PATH = "/.well-known/authzen-configuration";

type Handler = (deps: AuthzenDeps, body: Record<string, unknown>, requestId: string) => Promise<unknown>;

const HANDLERS: Record<keyof typeof AUTHZEN_PATHS, Handler> = {
  access_evaluation_endpoint: (deps, body, requestId) => evaluate(deps, readParts(body), requestId),
  access_evaluations_endpoint: (deps, body, requestId) => evaluations(deps, body, requestId),
  search_subject_endpoint: (deps, body, requestId) => searchSubjects(searchDeps(deps), readParts(body), requestId),
  search_resource_endpoint: (deps, body, requestId) => searchResources(searchDeps(deps), readParts(body), requestId),
  search_action_endpoint: (deps, body, requestId) => searchActions(searchDeps(deps), readParts(body), requestId),
};

/**
 * The AuthZEN 1.0 Authorization API at the root of the HTTP port, and once
 * more per tenant under `/t/{tenant}`. Every decision is a Check through the
 * one Decider, so reasons, the decision log and min_revision are those of
 * gRPC Check (the README has the mapping).
 */
export async function registerAuthzen(app: FastifyInstance, deps: AuthzenDeps): Promise<void> {
  await app.register(async (scope) => {
    // Our own parser, so a wrong content type or malformed JSON is AuthZEN's 400 with our error body.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string", bodyLimit: BODY_LIMIT }, (_request, body, done) => done(null, body));
    scope.addHook("onRequest", async (request, reply) => {
      const id = request.headers["x-request-id"];
      if (typeof id === "string") reply.header("x-request-id", id);
    });

    // The root PDP: tenants from properties or the default. A tenant PDP: its path's tenant only.
    const root = (): AuthzenDeps => deps;
    const tenant = (request: FastifyRequest): AuthzenDeps => ({ ...deps, tenancy: { ...deps.tenancy, pathTenant: pathTenantOf(request) } });
    for (const [prefix, depsOf] of [["", root], [TENANT_PATH, tenant]] as const) {
      scope.get(`${METADATA_PATH}${prefix}`, async (request, reply) => {
        if (!authenticated(deps, request, reply)) return reply;
        const host = `${request.protocol}://${request.headers.host ?? request.hostname}`;
        let pdp: string;
        try {
          pdp = prefix === "" ? host : `${host}/t/${pathTenantOf(request)}`;
        } catch (error) {
          return sendError(reply, asBulkheadError(error));
        }
        const endpoints = Object.fromEntries(Object.entries(AUTHZEN_PATHS).map(([k, path]) => [k, `${pdp}${path}`]));
        return reply.code(200).type("application/json").send({ policy_decision_point: pdp, ...endpoints });
      });
      for (const [key, path] of Object.entries(AUTHZEN_PATHS) as [keyof typeof AUTHZEN_PATHS, string][]) {
        scope.post(`${prefix}${path}`, (request, reply) => answer(deps, request, reply, (body, requestId) => HANDLERS[key](depsOf(request), body, requestId)));
      }
    }
  });
}

function searchDeps(deps: AuthzenDeps): SearchDeps {
  return { ...deps, decide: (input) => deps.decider.check(input) };
}

/** The `{tenant}` of a tenant path, checked as every tenant id is. */
function pathTenantOf(request: FastifyRequest): string {
  const tenant = (request.params as { tenant?: string }).tenant ?? "";
  checkId(tenant, "path.tenant");
  return tenant;
}

function authenticated(deps: AuthzenDeps, request: FastifyRequest, reply: FastifyReply): boolean {
  try {
    deps.auth.verifyBearer(request.headers.authorization);
    return true;
  } catch (error) {
    sendError(reply, asBulkheadError(error));
    return false;
  }
}

/** Caller token, content type, JSON object; then the handler. Every failure is an error status, never a decision. */
async function answer(
  deps: AuthzenDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  handler: (body: Record<string, unknown>, requestId: string) => Promise<unknown>,
): Promise<FastifyReply> {
  if (!authenticated(deps, request, reply)) return reply;
  try {
    const body = jsonObjectBody(request);
    const result = await handler(body, requestIdOf(request.headers["x-request-id"]));
    return reply.code(200).type("application/json").send(result);
  } catch (thrown) {
    const error = asBulkheadError(thrown);
    if (error.category === "internal") deps.log(`authzen: ${request.url} failed: ${error.message}`);
    return sendError(reply, error);
  }
}

function sendError(reply: FastifyReply, error: BulkheadError): FastifyReply {
  return reply.code(httpStatusOf(error)).type("application/json").send(errorBody(error));
}

function jsonObjectBody(request: FastifyRequest): Record<string, unknown> {
  const type = request.headers["content-type"] ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) throw invalidArgument("Content-Type", "must be application/json");
  const raw = typeof request.body === "string" ? request.body : "";
  if (raw.trim() === "") throw invalidArgument("body", "is empty; send a JSON object");
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw invalidArgument("body", "is not valid JSON");
  }
  if (!isObject(body)) throw invalidArgument("body", "must be a JSON object");
  return body;
}

async function evaluate(deps: AuthzenDeps, parts: EvaluationParts, requestId: string) {
  requireFields(parts, EVALUATION_FIELDS);
  const input = toCheckInput(complete(parts), deps.tenancy, requestId);
  return toEvaluationResponse(await deps.decider.check(input));
}

/**
 * Access Evaluations. Without items it is one evaluation (c-3-4-2/3). An
 * item that cannot be decided (a missing field, a store failure) is answered
 * `decision: false` with the error in its context, and the others are
 * decided as usual; under a short-circuit semantic an error counts as a deny.
 */
async function evaluations(deps: AuthzenDeps, body: Record<string, unknown>, requestId: string) {
  const items = body.evaluations;
  if (items !== undefined && !Array.isArray(items)) throw invalidArgument("evaluations", "must be an array");
  if (items === undefined || items.length === 0) return evaluate(deps, readParts(body), requestId);
  if (items.length > LIMITS.batchSize) throw invalidArgument("evaluations", `must hold at most ${LIMITS.batchSize} items`);
  const defaults = readParts(body);
  const semantic = readSemantic(body.options);
  const decideItem = async (item: unknown, i: number) => {
    const prefix = `evaluations[${i}].`;
    try {
      if (!isObject(item)) throw invalidArgument(`evaluations[${i}]`, "must be an object");
      const parts = mergeItem(defaults, readParts(item, prefix));
      requireFields(parts, EVALUATION_FIELDS, prefix);
      return toEvaluationResponse(await deps.decider.check(toCheckInput(complete(parts), deps.tenancy, requestId, prefix)));
    } catch (error) {
      return failedItem(asBulkheadError(error));
    }
  };
  if (semantic === "execute_all") return { evaluations: await Promise.all(items.map(decideItem)) };
  // Short-circuit semantics answer in order and stop at the first deny (&&) or permit (||), including it.
  const stopAt = semantic === "permit_on_first_permit";
  const answered = [];
  for (const [i, item] of items.entries()) {
    const result = await decideItem(item, i);
    answered.push(result);
    if (result.decision === stopAt) break;
  }
  return { evaluations: answered };
}
