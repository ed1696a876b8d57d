import type { DecisionRecord } from "./decision-log.js";

/**
 * A decision as OPA's decision-log plugin reports one, so collectors built
 * for OPA (and their dashboards) take Bulkhead's without a mapping:
 * `decision_id`, `path`, `input`, `result`, `bundles.<name>.revision`,
 * `timestamp`, `labels`. What only Bulkhead has (the store revision the
 * decision read, its request id and source, an impersonation session) is
 * kept beside them under `bulkhead`. `input` is the request the host made,
 * not the policy's full input: the member context is the store's, and it is
 * found again from the store revision.
 */
export interface DecisionEvent {
  decision_id: string;
  path: "bulkhead/decision";
  input: {
    principal: { tenant_id: string; actor_id: string; actor_type: string };
    action: string;
    resource: { type: string; id: string; tenant_id: string };
  };
  result: { allow: boolean; reasons: string[] };
  bundles: { bulkhead: { revision: string } };
  timestamp: string;
  labels: Record<string, string>;
  bulkhead: { store_revision: number; request_id: string; source: string; impersonation: DecisionRecord["impersonation"] };
}

export function decisionEvent(record: DecisionRecord, labels: Record<string, string>, masks: readonly string[]): DecisionEvent {
  const event: DecisionEvent = {
    decision_id: record.decisionId,
    path: "bulkhead/decision",
    input: {
      principal: { tenant_id: record.tenantId, actor_id: record.actorId, actor_type: record.actorType },
      action: record.action,
      resource: { type: record.resourceType, id: record.resourceId, tenant_id: record.resourceTenantId },
    },
    result: { allow: record.allow, reasons: record.reasons },
    bundles: { bulkhead: { revision: record.policyRevision } },
    timestamp: new Date(record.at).toISOString(),
    labels,
    // A copy: a mask under /bulkhead/impersonation must not change the record itself.
    bulkhead: { store_revision: record.storeRevision, request_id: record.requestId, source: record.source, impersonation: record.impersonation && { ...record.impersonation } },
  };
  for (const mask of masks) removePointer(event, mask);
  return event;
}

/**
 * Mask paths are JSON pointers into the event, as OPA's `mask` rule returns
 * them (`/input/principal/actor_id`); only `/input/...` and `/bulkhead/...`
 * may be masked, so the id, path, result and revision always stay. A path
 * naming nothing is ignored, as in OPA.
 */
export const MASKABLE = /^\/(input|bulkhead)(\/[A-Za-z0-9_]+)+$/;

function removePointer(event: DecisionEvent, pointer: string): void {
  const keys = pointer.slice(1).split("/");
  let at: unknown = event;
  for (const key of keys.slice(0, -1)) {
    if (at === null || typeof at !== "object" || !Object.hasOwn(at, key)) return;
    at = (at as Record<string, unknown>)[key];
  }
  if (at !== null && typeof at === "object") delete (at as Record<string, unknown>)[keys.at(-1)!];
}
