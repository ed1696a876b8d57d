import { UsageError } from "../errors.js";
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
  private reapplying = false;

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
  replay(eventId: string, actor: string, reason: string, source = "cli"): IngestResult {
    const stored = this.deps.billing.event(eventId);
    if (!stored) throw new UsageError(`no stored billing event ${eventId} (bulkhead billing replay takes the id of an event this store received)`);
    const event = toBillingEvent(stored.payload);
    const { result, revision } = this.deps.writer.write((tx) => {
      const applied = this.apply(tx, event);
      // An event that was applied once stays recorded as applied.
      if (stored.outcome !== "applied") this.deps.billing.setOutcome(event.id, applied.outcome, applied.tenantId);
      this.deps.billing.audit(tx, {
        actor, tenantId: applied.tenantId, object: `billing_event:${eventId}`, action: "billing.replay",
        reason, source, result: applied.outcome,
      });
      return applied;
    });
    return { ...result, revision };
  }

  /**
   * Re-derives the tenant's plan, billing status, timing and seats from its
   * subscriptions. The governing subscription is the best live one that
   * names a plan (active/trialing before past_due before unpaid/paused before
   * incomplete, then newest), so a failed upgrade cannot demote a paying
   * tenant. No live plan subscription, or a price that names no plan, means
   * the free plan: an unknown price never keeps a richer plan. Seats add up
   * over every live subscription.
   */
  recomputeTenant(tx: WriteScope, tenantId: string, lostSubscription = false): void {
    const tenant = this.deps.directory.tenantById(tenantId);
    const subscriptions = this.deps.billing.tenantSubscriptions(tenantId);
    if (!tenant) return;
    if (subscriptions.length === 0) {
      // A tenant Stripe never billed keeps its seeded plan; one whose last
      // subscription moved to another customer has nothing paying for it.
      if (lostSubscription) {
        this.deps.directory.putTenant(tx, { ...tenant, planCode: FREE_PLAN, billingStatus: "canceled" });
        this.deps.billing.putState(tx, tenantId, { statusSince: tx.now, cancelAtPeriodEnd: false, currentPeriodEnd: null });
        if (this.deps.entitlements.hasAddon("seats")) this.deps.entitlements.setTenantAddon(tx, tenantId, "seats", 0);
      }
      return;
    }
    const live = subscriptions
      .filter((s) => !ENDED.has(s.status))
      .sort((a, b) => statusRank(a.status) - statusRank(b.status) || b.created - a.created);
    const governing = live.find((s) => s.planCode !== null) ?? live[0] ?? subscriptions[0]!;
    const planCode = live.length > 0 && governing.planCode !== null ? governing.planCode : FREE_PLAN;
    this.deps.directory.putTenant(tx, { ...tenant, planCode, billingStatus: governing.status });
    this.deps.billing.putState(tx, tenantId, {
      statusSince: governing.statusSince,
      cancelAtPeriodEnd: governing.cancelAtPeriodEnd,
      currentPeriodEnd: governing.currentPeriodEnd,
    });
    // Seat items feed the "seats" add-on, where the catalog defines one.
    if (this.deps.entitlements.hasAddon("seats")) {
      this.deps.entitlements.setTenantAddon(tx, tenantId, "seats", live.reduce((n, s) => n + s.seats, 0));
    }
  }

  private applySubscription(tx: WriteScope, event: BillingEvent) {
    const facts = subscriptionFacts(event.object);
    const tenantId = this.tenantFor(facts.customerId, facts.tenantHint);
    if (!tenantId) return { outcome: "unmapped" as const, tenantId: null };
    const status = event.type === "customer.subscription.deleted" ? "canceled" : facts.status;
    // Stripe never revives a canceled subscription, so an ended one stays ended
    // whatever order same-second events arrive in.
    const stored = this.deps.billing.subscriptionStatus(facts.id);
    if (stored && ENDED.has(stored) && !ENDED.has(status)) return { outcome: "stale" as const, tenantId };
    if (!this.deps.billing.advance(facts.id, event.created, event.id)) return { outcome: "stale" as const, tenantId };
    const before = this.deps.billing.subscriptionOwner(facts.id);
    this.claimCustomer(tx, facts.customerId, tenantId);
    this.deps.billing.putSubscription(tx, tenantId, { ...facts, status }, this.planOf(facts), event.created);
    this.recomputeTenant(tx, tenantId);
    if (before && before.customerId !== facts.customerId) {
      // Stripe does not move subscriptions between customers; an event that
      // does is recorded for an operator, and the tenant it left is
      // recomputed so it cannot keep a plan nothing pays for any more.
      this.deps.billing.audit(tx, {
        actor: "stripe", tenantId: before.tenantId, object: `subscription:${facts.id}`, action: "billing.subscription_moved",
        reason: `event ${event.id} moved it from customer ${before.customerId} (tenant ${before.tenantId}) to ${facts.customerId} (tenant ${tenantId})`,
        source: "webhook", result: "applied",
      });
      if (before.tenantId !== tenantId) this.recomputeTenant(tx, before.tenantId, true);
    }
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
    const mapped = this.deps.billing.customerTenant(customerId);
    // A webhook never moves a customer to another tenant: that takes an operator.
    if (mapped && hint && hint !== mapped) return { outcome: "unmapped" as const, tenantId: null };
    const tenantId = this.tenantFor(customerId, hint);
    if (!tenantId) return { outcome: "unmapped" as const, tenantId: null };
    if (!this.deps.billing.advance(objectKey, event.created, event.id)) return { outcome: "stale" as const, tenantId };
    this.claimCustomer(tx, customerId, tenantId);
    return { outcome: "applied" as const, tenantId };
  }

  /**
   * The customer's existing mapping wins (the first mapping sticks);
   * metadata.tenant_id, which only the merchant's server sets, is used only
   * for a customer no tenant has yet. client_reference_id is not trusted: a
   * buyer can put any value in a payment link.
   */
  tenantFor(customerId: string, hint: string | null): string | null {
    const mapped = this.deps.billing.customerTenant(customerId);
    if (mapped) return mapped;
    return hint && this.deps.directory.tenantById(hint) ? hint : null;
  }

  /**
   * Maps a so-far unknown customer and re-applies, oldest first, the events
   * that arrived for it before the mapping did (Stripe often sends
   * customer.subscription.created before checkout.session.completed).
   */
  private claimCustomer(tx: WriteScope, customerId: string, tenantId: string): void {
    if (this.deps.billing.customerTenant(customerId)) return;
    this.deps.billing.mapCustomer(tx, customerId, tenantId);
    if (this.reapplying) return;
    this.reapplying = true;
    try {
      const waiting = this.deps.billing
        .eventsWithOutcome("unmapped")
        .map((stored) => toBillingEvent(stored.payload))
        .filter((e) => customerOf(e.object) === customerId);
      for (const e of waiting) {
        const applied = this.apply(tx, e);
        this.deps.billing.setOutcome(e.id, applied.outcome, applied.tenantId);
      }
    } finally {
      this.reapplying = false;
    }
  }

  /**
   * The first item whose price names a plan: its lookup key (or price id) in
   * the plan catalog's key map, else a plan with that code. null: no plan.
   */
  planOf(facts: SubscriptionFacts): string | null {
    for (const item of facts.items) {
      for (const key of [item.lookupKey, item.priceId]) {
        const plan = key && this.deps.billing.planForLookupKey(key);
        if (plan) return plan;
      }
    }
    return null;
  }
}

function statusRank(status: string): number {
  const ranks: Record<string, number> = { active: 0, trialing: 0, past_due: 1, unpaid: 2, paused: 2, incomplete: 3 };
  return ranks[status] ?? 4;
}

/** A stored payload back into the event shape (replay, re-application after mapping). */
export function toBillingEvent(payload: string): BillingEvent {
  const envelope = JSON.parse(payload) as { id: string; type: string; created: number; data: { object: Record<string, unknown> } };
  return { id: envelope.id, type: envelope.type, created: envelope.created * 1000, object: envelope.data.object, payload };
}

/** The Stripe customer an event's object belongs to. */
function customerOf(object: Record<string, unknown>): string | null {
  if (object.object === "customer") return String(object.id);
  const customer = object.customer;
  if (typeof customer === "string") return customer;
  return typeof customer === "object" && customer !== null ? String((customer as { id?: unknown }).id) : null;
}
