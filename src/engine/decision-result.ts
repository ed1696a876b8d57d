import type { PolicyData } from "./policy-bundle.js";

export interface Reason {
  code: string;
  message: string;
  details: Record<string, string>;
}

export interface PolicyDecision {
  allow: boolean;
  reasons: Reason[];
}

const policyError = (message: string): PolicyDecision => ({
  allow: false,
  reasons: [{ code: "policy_error", message, details: {} }],
});

/**
 * Turns whatever the Wasm returned into a decision, failing closed: allow only
 * when the result is exactly `allow: true` with no reasons, for an action the
 * catalog knows. Anything empty, malformed or contradictory is a deny with
 * `policy_error`; an action outside the catalog is always `unknown_action`.
 */
export function normaliseDecision(resultSet: unknown, action: string, data: PolicyData): PolicyDecision {
  if (!Object.hasOwn(data.bulkhead.actions, action)) {
    return { allow: false, reasons: [{ code: "unknown_action", message: "action is not in the catalog", details: { action } }] };
  }
  const result = Array.isArray(resultSet) ? (resultSet[0] as { result?: unknown } | undefined)?.result : undefined;
  if (!isObject(result)) return policyError("policy returned no decision");
  const { allow, reasons } = result;
  if (typeof allow !== "boolean" || !Array.isArray(reasons)) return policyError("policy decision is malformed");
  const parsed = reasons.map(toReason);
  if (parsed.some((r) => r === undefined)) return policyError("policy returned a malformed reason");
  if (allow && parsed.length > 0) return policyError("policy allowed and gave deny reasons");
  if (!allow && parsed.length === 0) return policyError("policy denied without a reason");
  return { allow, reasons: parsed as Reason[] };
}

function toReason(value: unknown): Reason | undefined {
  if (!isObject(value) || typeof value.code !== "string" || value.code === "") return undefined;
  const details: Record<string, string> = {};
  if (isObject(value.details)) {
    for (const [k, v] of Object.entries(value.details)) details[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return { code: value.code, message: typeof value.message === "string" ? value.message : "", details };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
