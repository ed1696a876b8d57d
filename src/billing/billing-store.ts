import { AdminAudit, type AdminAuditEntry } from "../audit/admin-audit.js";
import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { InvoiceFacts, SubscriptionFacts } from "./stripe-objects.js";

export type EventOutcome = "applied" | "stale" | "unmapped" | "unhandled";

export interface StoredSubscription {
  id: string;
  tenantId: string;
  status: string;
  statusSince: number;
  planCode: string | null;
  cancelAtPeriodEnd: boolean;
  currentPeriodEnd: number | null;
  created: number;
  seats: number;
}

export interface BillingState {
  statusSince: number;
  cancelAtPeriodEnd: boolean;
  currentPeriodEnd: number | null;
}

export interface StoredEvent {
  eventId: string;
  type: string;
  outcome: EventOutcome;
  tenantId: string | null;
  payload: string;
}

/** The local billing mirror: customers, subscriptions, invoices, events, watermarks, features. */
export class SqliteBillingStore {
  private readonly stmt;
  private readonly adminAudit: AdminAudit;

  constructor(db: Db) {
    this.adminAudit = new AdminAudit(db);
    this.stmt = {
      recordEvent: db.prepare(
        `INSERT INTO billing_events (event_id, type, created, object_id, tenant_id, outcome, payload, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
      ),
      setOutcome: db.prepare("UPDATE billing_events SET outcome = ?, tenant_id = ? WHERE event_id = ?"),
      event: db.prepare<[string], StoredEvent>(
        "SELECT event_id AS eventId, type, outcome, tenant_id AS tenantId, payload FROM billing_events WHERE event_id = ?",
      ),
      eventsByOutcome: db.prepare<[string], StoredEvent>(
        "SELECT event_id AS eventId, type, outcome, tenant_id AS tenantId, payload FROM billing_events WHERE outcome = ? ORDER BY created",
      ),
      recentTenantEvents: db.prepare<[string, number], Omit<StoredEvent, "payload"> & { created: number }>(
        "SELECT event_id AS eventId, type, outcome, tenant_id AS tenantId, created FROM billing_events WHERE tenant_id = ? ORDER BY created DESC, event_id DESC LIMIT ?",
      ),
      watermark: db.prepare<[string], { created: number; event_id: string }>("SELECT created, event_id FROM billing_watermarks WHERE object_id = ?"),
      setWatermark: db.prepare(
        `INSERT INTO billing_watermarks (object_id, created, event_id) VALUES (?, ?, ?)
         ON CONFLICT (object_id) DO UPDATE SET created = excluded.created, event_id = excluded.event_id`,
      ),
      customerTenant: db.prepare<[string], string>("SELECT tenant_id FROM billing_customers WHERE customer_id = ?").pluck(),
      mapCustomer: db.prepare(
        `INSERT INTO billing_customers (customer_id, tenant_id, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (customer_id) DO UPDATE SET tenant_id = excluded.tenant_id, updated_at = excluded.updated_at`,
      ),
      subscription: db.prepare<[string], { status: string; status_since: number; tenant_id: string; customer_id: string }>(
        "SELECT status, status_since, tenant_id, customer_id FROM subscriptions WHERE id = ?",
      ),
      putSubscription: db.prepare(
        `INSERT INTO subscriptions (id, tenant_id, customer_id, status, status_since, plan_code, cancel_at_period_end,
           current_period_end, trial_end, created, updated_at)
         VALUES (@id, @tenantId, @customerId, @status, @statusSince, @planCode, @cancelAtPeriodEnd, @currentPeriodEnd, @trialEnd, @created, @now)
         ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, customer_id = excluded.customer_id, status = excluded.status, status_since = excluded.status_since,
           plan_code = excluded.plan_code, cancel_at_period_end = excluded.cancel_at_period_end,
           current_period_end = excluded.current_period_end, trial_end = excluded.trial_end, updated_at = excluded.updated_at`,
      ),
      clearItems: db.prepare("DELETE FROM subscription_items WHERE subscription_id = ?"),
      addItem: db.prepare("INSERT INTO subscription_items (id, subscription_id, price_id, lookup_key, quantity) VALUES (?, ?, ?, ?, ?)"),
      tenantSubscriptions: db.prepare<[string], StoredSubscription>(
        `SELECT s.id, s.tenant_id AS tenantId, s.status, s.status_since AS statusSince, s.plan_code AS planCode,
                s.cancel_at_period_end AS cancelAtPeriodEnd, s.current_period_end AS currentPeriodEnd, s.created,
                coalesce((SELECT sum(quantity) FROM subscription_items i WHERE i.subscription_id = s.id AND i.lookup_key = 'seats'), 0) AS seats
           FROM subscriptions s WHERE s.tenant_id = ? ORDER BY s.created DESC, s.id DESC`,
      ),
      putInvoice: db.prepare(
        `INSERT INTO invoices (id, tenant_id, customer_id, subscription_id, status, amount_due, amount_paid, currency, updated_at)
         VALUES (@id, @tenantId, @customerId, @subscriptionId, @status, @amountDue, @amountPaid, @currency, @now)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, amount_due = excluded.amount_due,
           amount_paid = excluded.amount_paid, updated_at = excluded.updated_at`,
      ),
      clearFeatures: db.prepare("DELETE FROM billing_features WHERE tenant_id = ?"),
      addFeature: db.prepare("INSERT OR IGNORE INTO billing_features (tenant_id, feature) VALUES (?, ?)"),
      features: db.prepare<[string], string>("SELECT feature FROM billing_features WHERE tenant_id = ? ORDER BY feature").pluck(),
      putState: db.prepare(
        `INSERT INTO billing_state (tenant_id, status_since, cancel_at_period_end, current_period_end) VALUES (?, ?, ?, ?)
         ON CONFLICT (tenant_id) DO UPDATE SET status_since = excluded.status_since,
           cancel_at_period_end = excluded.cancel_at_period_end, current_period_end = excluded.current_period_end`,
      ),
      state: db.prepare<[string], { status_since: number; cancel_at_period_end: number; current_period_end: number | null }>(
        "SELECT status_since, cancel_at_period_end, current_period_end FROM billing_state WHERE tenant_id = ?",
      ),
      planAccess: db.prepare<[string, string], string>("SELECT access FROM plan_billing_access WHERE plan_code = ? AND billing_status = ?").pluck(),
      setPlanAccess: db.prepare(
        `INSERT INTO plan_billing_access (plan_code, billing_status, access) VALUES (?, ?, ?)
         ON CONFLICT (plan_code, billing_status) DO UPDATE SET access = excluded.access`,
      ),
      planForKey: db.prepare<[string, string], string>(
        "SELECT coalesce((SELECT plan_code FROM plan_lookup_keys WHERE lookup_key = ?), (SELECT code FROM plans WHERE code = ?))",
      ).pluck(),
      setPlanLookupKey: db.prepare(
        "INSERT INTO plan_lookup_keys (lookup_key, plan_code) VALUES (?, ?) ON CONFLICT (lookup_key) DO UPDATE SET plan_code = excluded.plan_code",
      ),
    };
  }

  /** False when the event id was already recorded: a duplicate delivery. */
  recordEvent(tx: WriteScope, e: { id: string; type: string; created: number; objectId: string; payload: string }): boolean {
    tx.noted("billing_event");
    return this.stmt.recordEvent.run(e.id, e.type, e.created, e.objectId, null, "unhandled", e.payload, tx.now).changes > 0;
  }

  setOutcome(eventId: string, outcome: EventOutcome, tenantId: string | null): void {
    this.stmt.setOutcome.run(outcome, tenantId, eventId);
  }

  event(eventId: string): StoredEvent | undefined {
    return this.stmt.event.get(eventId);
  }

  /** The tenant's latest events (Stripe's created, seconds), newest first; for the console's tenant page. */
  recentTenantEvents(tenantId: string, limit: number): (Omit<StoredEvent, "payload"> & { created: number })[] {
    return this.stmt.recentTenantEvents.all(tenantId, limit);
  }

  eventsWithOutcome(outcome: EventOutcome): StoredEvent[] {
    return this.stmt.eventsByOutcome.all(outcome);
  }

  /**
   * Advances the object's watermark to (created, eventId) and returns true,
   * or returns false when a newer (or the same) event was already applied.
   * Ties on `created` (Stripe's seconds) break by event id, so every delivery
   * order converges on the same event.
   */
  advance(objectId: string, created: number, eventId: string): boolean {
    const mark = this.stmt.watermark.get(objectId);
    if (mark && (mark.created > created || (mark.created === created && mark.event_id >= eventId))) return false;
    this.stmt.setWatermark.run(objectId, created, eventId);
    return true;
  }

  customerTenant(customerId: string): string | undefined {
    return this.stmt.customerTenant.get(customerId);
  }

  mapCustomer(tx: WriteScope, customerId: string, tenantId: string): void {
    this.stmt.mapCustomer.run(customerId, tenantId, tx.now);
    tx.changed(tenantId, "billing");
  }

  putSubscription(tx: WriteScope, tenantId: string, s: SubscriptionFacts, planCode: string | null, eventCreated: number): void {
    const known = this.stmt.subscription.get(s.id);
    const statusSince = known && known.status === s.status ? known.status_since : eventCreated;
    this.stmt.putSubscription.run({
      ...s, tenantId, planCode, statusSince, cancelAtPeriodEnd: s.cancelAtPeriodEnd ? 1 : 0, now: tx.now,
    });
    this.stmt.clearItems.run(s.id);
    for (const item of s.items) this.stmt.addItem.run(item.id, s.id, item.priceId, item.lookupKey, item.quantity);
    tx.changed(tenantId, "billing");
  }

  subscriptionStatus(id: string): string | undefined {
    return this.stmt.subscription.get(id)?.status;
  }

  /** The tenant and customer a stored subscription belongs to now. */
  subscriptionOwner(id: string): { tenantId: string; customerId: string } | undefined {
    const row = this.stmt.subscription.get(id);
    return row && { tenantId: row.tenant_id, customerId: row.customer_id };
  }

  tenantSubscriptions(tenantId: string): StoredSubscription[] {
    return this.stmt.tenantSubscriptions.all(tenantId).map((s) => ({ ...s, cancelAtPeriodEnd: Boolean(s.cancelAtPeriodEnd) }));
  }

  putInvoice(tx: WriteScope, tenantId: string, invoice: InvoiceFacts): void {
    this.stmt.putInvoice.run({ ...invoice, tenantId, now: tx.now });
    tx.changed(tenantId, "invoice");
  }

  setFeatures(tx: WriteScope, tenantId: string, features: string[]): void {
    this.stmt.clearFeatures.run(tenantId);
    for (const feature of features) this.stmt.addFeature.run(tenantId, feature);
    tx.changed(tenantId, "billing");
  }

  features(tenantId: string): string[] {
    return this.stmt.features.all(tenantId);
  }

  putState(tx: WriteScope, tenantId: string, state: BillingState): void {
    this.stmt.putState.run(tenantId, state.statusSince, state.cancelAtPeriodEnd ? 1 : 0, state.currentPeriodEnd);
    tx.changed(tenantId, "billing");
  }

  state(tenantId: string): BillingState | undefined {
    const row = this.stmt.state.get(tenantId);
    return row && { statusSince: row.status_since, cancelAtPeriodEnd: row.cancel_at_period_end === 1, currentPeriodEnd: row.current_period_end };
  }

  planAccess(planCode: string, billingStatus: string): string | undefined {
    return this.stmt.planAccess.get(planCode, billingStatus);
  }

  setPlanAccess(tx: WriteScope, planCode: string, billingStatus: string, access: string): void {
    this.stmt.setPlanAccess.run(planCode, billingStatus, access);
    tx.changed(null, "plan_billing_access");
  }

  setPlanLookupKey(tx: WriteScope, lookupKey: string, planCode: string): void {
    this.stmt.setPlanLookupKey.run(lookupKey, planCode);
    tx.changed(null, "plan_lookup_key");
  }

  /** The plan a price lookup key names: an explicit mapping, else a plan with that code. */
  planForLookupKey(lookupKey: string): string | null {
    return this.stmt.planForKey.get(lookupKey, lookupKey) ?? null;
  }

  /** Billing's operator actions (replay, reconcile) go to the shared admin audit. */
  audit(tx: WriteScope, entry: AdminAuditEntry): void {
    this.adminAudit.record(tx, entry);
  }
}
