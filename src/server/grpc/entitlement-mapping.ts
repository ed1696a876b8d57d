import type { EntitlementReport } from "../../entitlements/entitlement-report.js";
import type { OutboxEvent } from "../../events/outbox.js";
import type { Event, GetEntitlementsResponse } from "../../gen/bulkhead/v1/entitlements.js";
import type { MeterAnswer } from "../../usage/metering.js";

const timestamp = (ms: number | null): Date | undefined => (ms !== null && Number.isFinite(ms) ? new Date(ms) : undefined);

/** The limit/remaining trio of every metering answer; unlimited is a flag, not a huge number. */
export function fromMeterAnswer(a: MeterAnswer) {
  return {
    used: a.used,
    limit: a.limit ?? 0,
    remaining: a.remaining ?? 0,
    unlimited: a.limit === null,
    storeRevision: a.storeRevision,
  };
}

export function fromEntitlementReport(r: EntitlementReport): GetEntitlementsResponse {
  return {
    tenantId: r.tenantId,
    planCode: r.planCode,
    billingStatus: r.billingStatus,
    entitlements: r.grants.map((g) => ({ key: g.key, source: g.source, sourceId: g.sourceId, expiresAt: timestamp(g.expiresAt) })),
    limits: r.limits.map((l) => ({
      meter: l.limit.meter,
      kind: l.limit.kind,
      unlimited: l.limit.hard === null,
      soft: l.limit.soft ?? 0,
      hard: l.limit.hard ?? 0,
      used: l.used,
      reserved: l.reserved,
      remaining: l.remaining ?? 0,
      reset: l.limit.reset,
      resetsAt: timestamp(l.window.end),
      sources: l.limit.sources,
    })),
    storeRevision: r.storeRevision,
  };
}

export function fromOutboxEvent(e: OutboxEvent): Event {
  return {
    id: e.id,
    tenantId: e.tenantId,
    kind: e.kind,
    payload: e.payload,
    createdAt: new Date(e.createdAt),
    storeRevision: e.revision,
  };
}
