import type { DirectoryStore } from "../directory/directory-store.js";
import type { EntitlementStore } from "../entitlements/entitlement-store.js";
import type { RevisionWriter, WriteScope } from "../store/revision-writer.js";
import type { EventOutcome, SqliteBillingStore } from "./billing-store.js";
import {
  checkoutFacts,
  customerFacts,
  entitlementSummaryFacts,
  invoiceFacts,
  subscriptionFacts,
  type SubscriptionFacts,
} from "./stripe-objects.js";

/** A verified Stripe event in the shape the projector needs. */
export interface BillingEvent {
  id: string;
  type: string;
  /** Epoch ms (Stripe's `created` seconds x 1000). */
  created: number;
  object: Record<string, unknown>;
  /** The raw payload, kept for replay. */
  payload: string;
}

export interface IngestResult {
  outcome: EventOutcome | "duplicate";
  tenantId: string | null;
  revision: number;
}

/** The plan a tenant falls back to when its subscription ends (DESIGN.md section 10). */
export const FREE_PLAN = "free";

const SUBSCRIPTION_EVENTS = new Set([
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.deleted",
  "customer.subscription.paused",
  "customer.subscription.resumed",
  "customer.subscription.trial_will_end",
]);
const INVOICE_EVENTS = new Set(["invoice.paid", "invoice.payment_failed", "invoice.finalized"]);
const ENDED = new Set(["canceled", "incomplete_expired"]);

/**
 * Projects Stripe events onto the local billing mirror and the tenant row, in
 * one transaction per event: record the event id (a duplicate stops there),
 * apply the object only if it is newer than what is stored for it, recompute
 * the tenant's plan, billing status and seats, bump the revision.
 */
export class BillingProjector {
  constructor(
    private readonly deps: {
      writer: RevisionWriter;
      billing: SqliteBillingStore;
      directory: DirectoryStore;
      entitlements: EntitlementStore;
    },
  ) {}

  ingest(event: BillingEvent): IngestResult {
    const { result, revision } = this.deps.writer.write((tx) => {
      const objectId = String(event.object.id ?? event.object.customer ?? "");
      const fresh = this.deps.billing.recordEvent(tx, { id: event.id, type: event.type, created: event.created, objectId, payload: event.payload });
      if (!fresh) return { outcome: "duplicate" as const, tenantId: null };
      const applied = this.apply(tx, event);
      this.deps.billing.setOutcome(event.id, applied.outcome, applied.tenantId);
      return applied;
    });
    return { ...result, revision };
  }

  /** Applies one event's object (also used by replay); returns what became of it. */
  apply(tx: WriteScope, event: BillingEvent): { outcome: EventOutcome; tenantId: string | null } {
    if (SUBSCRIPTION_EVENTS.has(event.type)) return this.applySubscription(tx, event);
    if (INVOICE_EVENTS.has(event.type)) return this.applyInvoice(tx, event);
    switch (event.type) {
      case "customer.created":
      case "customer.updated": {
        const c = customerFacts(event.object);
        return this.mapCustomer(tx, c.id, c.tenantHint, event, `customer:${c.id}`);
      }
      case "checkout.session.completed": {
        const c = checkoutFacts(event.object);
        if (!c.customerId) return { outcome: "unmapped", tenantId: null };
        return this.mapCustomer(tx, c.customerId, c.tenantHint, event, `checkout:${String(event.object.id)}`);
      }
      case "entitlements.active_entitlement_summary.updated": {
        const s = entitlementSummaryFacts(event.object);
        const tenantId = this.deps.billing.customerTenant(s.customerId) ?? null;
        if (!tenantId) return { outcome: "unmapped", tenantId: null };
        if (!this.deps.billing.advance(`entitlements:${s.customerId}`, event.created, event.id)) return { outcome: "stale", tenantId };
        this.deps.billing.setFeatures(tx, tenantId, s.features);
        return { outcome: "applied", tenantId };
      }
      default:
        return { outcome: "unhandled", tenantId: null };
    }
  }

  /**
   * Re-applies a stored event (after a mapping was fixed, say), audited in the
   * same transaction. Watermarks still apply, so a replay never rolls state back.
   */
  replay(eventId: string, actor: string, reason: string): IngestResult {
    const stored = this.deps.billing.event(eventId);
    if (!stored) throw new Error(`no stored billing event ${eventId}`);
    const envelope = JSON.parse(stored.payload) as { id: string; type: string; created: number; data: { object: Record<string, unknown> } };
    const event: BillingEvent = { id: envelope.id, type: envelope.type, created: envelope.created * 1000, object: envelope.data.object, payload: stored.payload };
    const { result, revision } = this.deps.writer.write((tx) => {
      const applied = this.apply(tx, event);
      this.deps.billing.setOutcome(event.id, applied.outcome, applied.tenantId);
      this.deps.billing.audit(tx, {
        actor, tenantId: applied.tenantId, object: `billing_event:${eventId}`, action: "billing.replay",
        reason, source: "cli", result: applied.outcome,
      });
      return applied;
    });
    return { ...result, revision };
  }

  /** Re-derives the tenant's plan, billing status, timing and seats from its subscriptions. */
  recomputeTenant(tx: WriteScope, tenantId: string): void {
    const tenant = this.deps.directory.tenantById(tenantId);
    const subscriptions = this.deps.billing.tenantSubscriptions(tenantId);
    const governing = subscriptions.find((s) => !ENDED.has(s.status)) ?? subscriptions[0];
    if (!tenant || !governing) return;
    const ended = ENDED.has(governing.status);
    const planCode = ended ? FREE_PLAN : (governing.planCode ?? tenant.planCode);
    this.deps.directory.putTenant(tx, { ...tenant, planCode, billingStatus: governing.status });
    this.deps.billing.putState(tx, tenantId, {
      statusSince: governing.statusSince,
      cancelAtPeriodEnd: governing.cancelAtPeriodEnd,
      currentPeriodEnd: governing.currentPeriodEnd,
    });
    // Seat items feed the "seats" add-on, where the catalog defines one.
    if (this.deps.entitlements.hasAddon("seats")) {
      this.deps.entitlements.setTenantAddon(tx, tenantId, "seats", ended ? 0 : governing.seats);
    }
  }

  private applySubscription(tx: WriteScope, event: BillingEvent) {
    const facts = subscriptionFacts(event.object);
    const tenantId = this.tenantFor(facts.customerId, facts.tenantHint);
    if (!tenantId) return { outcome: "unmapped" as const, tenantId: null };
    if (!this.deps.billing.advance(facts.id, event.created, event.id)) return { outcome: "stale" as const, tenantId };
    const status = event.type === "customer.subscription.deleted" ? "canceled" : facts.status;
    this.deps.billing.putSubscription(tx, tenantId, { ...facts, status }, this.planOf(facts), event.created);
    this.recomputeTenant(tx, tenantId);
    return { outcome: "applied" as const, tenantId };
  }

  private applyInvoice(tx: WriteScope, event: BillingEvent) {
    const invoice = invoiceFacts(event.object);
    const tenantId = this.deps.billing.customerTenant(invoice.customerId) ?? null;
    if (!tenantId) return { outcome: "unmapped" as const, tenantId: null };
    if (!this.deps.billing.advance(invoice.id, event.created, event.id)) return { outcome: "stale" as const, tenantId };
    this.deps.billing.putInvoice(tx, tenantId, invoice);
    return { outcome: "applied" as const, tenantId };
  }

  private mapCustomer(tx: WriteScope, customerId: string, hint: string | null, event: BillingEvent, objectKey: string) {
    const tenantId = this.tenantFor(customerId, hint);
    if (!tenantId) return { outcome: "unmapped" as const, tenantId: null };
    if (!this.deps.billing.advance(objectKey, event.created, event.id)) return { outcome: "stale" as const, tenantId };
    this.deps.billing.mapCustomer(tx, customerId, tenantId);
    return { outcome: "applied" as const, tenantId };
  }

  /** metadata.tenant_id wins when it names a real tenant; otherwise the customer mapping. */
  tenantFor(customerId: string, hint: string | null): string | null {
    if (hint && this.deps.directory.tenantById(hint)) return hint;
    return this.deps.billing.customerTenant(customerId) ?? null;
  }

  /** The first item whose price lookup key names a plan; null keeps the plan already known. */
  planOf(facts: SubscriptionFacts): string | null {
    for (const item of facts.items) {
      const plan = item.lookupKey && this.deps.billing.planForLookupKey(item.lookupKey);
      if (plan) return plan;
    }
    return null;
  }
}
