import { ServerInterceptingCall, status, type Metadata, type ServerInterceptor } from "@grpc/grpc-js";
import type { ErrorCategory } from "../../errors.js";
import { withCallFields } from "../../log/call-fields.js";
import type { Logger } from "../../log/logger.js";
import { apiKeyIdOf } from "../../identity/api-keys.js";
import { errorBehind } from "./grpc-errors.js";

/**
 * One log line per gRPC call, at the server's edge like the metrics
 * interceptor, so no RPC can be left out: info for an answered call (a deny
 * is an answer) and for a bad request, warn for a refused or unavailable
 * one, error for an internal failure, with the error and its cause chain
 * (issue 17: an INTERNAL was answered and never logged). A busy sidecar that
 * wants no line per call runs at BULKHEAD_LOG_LEVEL=warn; the decision log
 * keeps every decision either way. Tenant and actor ids belong in logs, not
 * in metric labels (cardinality).
 */
export function callLogInterceptor(logger: Logger): ServerInterceptor {
  return (method, call) => {
    const started = performance.now();
    let metadata: Metadata | undefined;
    let request: unknown;
    let response: unknown;
    // What the handler's callees note (noteCallFields): the handler runs inside this store.
    const noted: Fields = {};
    return new ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(received, pass) {
            metadata = received;
            pass(received); // the handler starts with a message or the half-close, below
          },
          onReceiveMessage(message, pass) {
            request ??= message; // a stream's first request names its tenant
            withCallFields(noted, () => pass(message));
          },
          onReceiveHalfClose(pass) {
            withCallFields(noted, () => pass());
          },
        });
      },
      sendMessage(message, next) {
        response ??= message;
        next(message);
      },
      sendStatus(sent, next) {
        const error = sent.metadata ? errorBehind(sent.metadata) : undefined;
        const level = levelOf(sent.code, error?.category);
        if (logger.isLevelEnabled(level)) {
          const fields = {
            method: method.path,
            code: status[sent.code] ?? String(sent.code),
            durationMs: Math.round((performance.now() - started) * 1000) / 1000,
            ...requestFields(request),
            ...responseFields(response),
            ...noted,
            ...(error && { errorCode: error.code, err: error }),
            ...(metadata && { metadata: callerMetadata(metadata) }),
          };
          logger[level](fields, sent.code === status.OK ? "call answered" : `call failed: ${sent.details ?? ""}`);
        }
        next(sent);
      },
    });
  };
}

function levelOf(code: status, category: ErrorCategory | undefined): "info" | "warn" | "error" {
  if (code === status.OK) return "info";
  if (category === "internal" || (category === undefined && (code === status.INTERNAL || code === status.UNKNOWN))) return "error";
  if (category === "invalid_argument" || category === "not_found" || category === "already_exists" || category === "failed_precondition") return "info";
  return "warn";
}

type Fields = Record<string, unknown>;

/**
 * Which client called, from the headers Bulkhead knows, never the whole
 * metadata: a header nobody listed (a session cookie, a key under a custom
 * name) could hold a secret that neither the redact paths nor the scrubber
 * recognise. That a call carried credentials is shown, their value never.
 */
const CALLER_HEADERS = ["user-agent", "bulkhead-actor"] as const;

function callerMetadata(metadata: Metadata): Fields {
  const fields: Fields = {};
  for (const key of CALLER_HEADERS) {
    const [value] = metadata.get(key);
    if (typeof value === "string") fields[key] = value;
  }
  if (metadata.get("authorization").length > 0) fields.authorization = "[Redacted]";
  return fields;
}

/** The identifying fields of any Bulkhead request: a principal's, or the top-level tenant, actor, flag and plan. */
function requestFields(request: unknown): Fields {
  if (typeof request !== "object" || request === null) return {};
  const r = request as Fields & { principal?: Fields };
  const p = r.principal ?? {};
  // An API key's caller is the key (README, API keys): its id is public, its secret is never read here.
  const keyId = typeof p.apiKey === "string" && p.apiKey !== "" ? apiKeyIdOf(p.apiKey) : undefined;
  return pick({
    requestId: p.requestId,
    tenantId: p.tenantId || r.tenantId,
    tenantSlug: p.tenantSlug, // a slug is not an id: a query by tenantId must not match it
    actorId: p.actorId || r.actorId || keyId,
    actorType: keyId ? "api_key" : p.actorType,
    action: r.action,
    flag: r.key,
    flags: Array.isArray(r.flagKeys) && r.flagKeys.length > 0 ? r.flagKeys : undefined,
    plan: r.planCode,
    reason: r.reason,
    checks: Array.isArray(r.checks) ? r.checks.length : undefined,
  });
}

/** A decision's id and outcome, when the answer is one. */
function responseFields(response: unknown): Fields {
  if (typeof response !== "object" || response === null) return {};
  const r = response as Fields & { reasons?: { code?: string }[] };
  return pick({
    decisionId: r.decisionId,
    result: typeof r.allow === "boolean" ? (r.allow ? "allow" : "deny") : undefined,
    reasons: Array.isArray(r.reasons) && r.reasons.length > 0 ? r.reasons.map((reason) => reason.code) : undefined,
  });
}

/** Drops empty values: proto3 defaults ("" and 0) mean "not set". */
function pick(fields: Fields): Fields {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined && v !== "" && v !== 0));
}
