import { status, type Metadata, type ServerInterceptingCallInterface } from "@grpc/grpc-js";
import type { ErrorCategory } from "../../errors.js";
import type { CallFields } from "../../log/call-fields.js";
import type { Logger } from "../../log/logger.js";
import { apiKeyIdOf } from "../../identity/api-keys.js";
import { errorBehind } from "./grpc-errors.js";

/**
 * One log line per gRPC call, at the server's edge (written by the one call
 * interceptor, call-edge.ts, ADR 92), so no RPC can be left out: info for an
 * answered call (a deny is an answer) and for a bad request, warn for a
 * refused or unavailable one, error for an internal failure, with the error
 * and its cause chain (issue 17: an INTERNAL was answered and never logged).
 * A busy sidecar that wants no line per call runs at BULKHEAD_LOG_LEVEL=warn;
 * the decision log keeps every decision either way, and below the level no
 * field of the line is built. Tenant and actor ids belong in logs, not in
 * metric labels (cardinality).
 */
/** The status a call ends with, as an interceptor sees it. */
export type SentStatus = Parameters<ServerInterceptingCallInterface["sendStatus"]>[0];

export interface CallRecord {
  path: string;
  /** performance.now() at the call's start. */
  started: number;
  metadata: Metadata | undefined;
  /** The first request (a stream's first request names its tenant). */
  request: unknown;
  /** The first response. */
  response: unknown;
  /** What the handler's callees learnt for the line (the plan a Check resolved to). */
  fields: CallFields | undefined;
}

export function logCall(logger: Logger, call: CallRecord, sent: SentStatus): void {
  const error = sent.metadata ? errorBehind(sent.metadata) : undefined;
  const level = levelOf(sent.code, error?.category);
  if (!logger.isLevelEnabled(level)) return;
  // Built in place, in the order the line has always had; a later field of the same name wins (a noted plan over a request's).
  const fields: Fields = {
    method: call.path,
    code: status[sent.code] ?? String(sent.code),
    durationMs: Math.round((performance.now() - call.started) * 1000) / 1000,
  };
  requestFields(fields, call.request);
  responseFields(fields, call.response);
  if (call.fields) Object.assign(fields, call.fields);
  if (error) {
    fields.errorCode = error.code;
    fields.err = error;
  }
  if (call.metadata) fields.metadata = callerMetadata(call.metadata);
  logger[level](fields, sent.code === status.OK ? "call answered" : `call failed: ${sent.details ?? ""}`);
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
function requestFields(into: Fields, request: unknown): void {
  if (typeof request !== "object" || request === null) return;
  const r = request as Fields & { principal?: Fields };
  const p = r.principal ?? {};
  // An API key's caller is the key (README, API keys): its id is public, its secret is never read here.
  const keyId = typeof p.apiKey === "string" && p.apiKey !== "" ? apiKeyIdOf(p.apiKey) : undefined;
  put(into, "requestId", p.requestId);
  put(into, "tenantId", p.tenantId || r.tenantId);
  put(into, "tenantSlug", p.tenantSlug); // a slug is not an id: a query by tenantId must not match it
  put(into, "actorId", p.actorId || r.actorId || keyId);
  put(into, "actorType", keyId ? "api_key" : p.actorType);
  put(into, "action", r.action);
  put(into, "flag", r.key);
  put(into, "flags", Array.isArray(r.flagKeys) && r.flagKeys.length > 0 ? r.flagKeys : undefined);
  put(into, "plan", r.planCode);
  put(into, "reason", r.reason);
  put(into, "checks", Array.isArray(r.checks) ? r.checks.length : undefined);
}

/** A decision's id and outcome, when the answer is one. */
function responseFields(into: Fields, response: unknown): void {
  if (typeof response !== "object" || response === null) return;
  const r = response as Fields & { reasons?: { code?: string }[] };
  put(into, "decisionId", r.decisionId);
  put(into, "result", typeof r.allow === "boolean" ? (r.allow ? "allow" : "deny") : undefined);
  put(into, "reasons", Array.isArray(r.reasons) && r.reasons.length > 0 ? r.reasons.map((reason) => reason.code) : undefined);
}

/** Sets a field unless it is empty: proto3 defaults ("" and 0) mean "not set". */
function put(into: Fields, key: string, value: unknown): void {
  if (value !== undefined && value !== "" && value !== 0) into[key] = value;
}
