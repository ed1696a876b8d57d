import type Stripe from "stripe";
import { adminCommand, commandActor, type AdminActor, type AdminBody, type AuditedWriter, type CommandActor, type WriteResult } from "../audit/audited-write.js";
import { BulkheadError } from "../errors.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { RevisionWriter } from "../store/revision-writer.js";
import type { CommandKind, CommandRegistry } from "../store/store-command.js";
import type { DirectoryStore } from "../directory/directory-store.js";
import type { BillingProjector, IngestResult } from "./billing-projector.js";
import type { SqliteBillingStore } from "./billing-store.js";
import { findDrift, listSubscriptionFacts, repairDrift, type ReconcileReport } from "./reconcile.js";
import type { SubscriptionFacts } from "./stripe-objects.js";

/**
 * Billing operations for staff (ADR 78): replay a stored Stripe event,
 * reconcile the mirror with the Stripe API, recalculate a tenant's
 * entitlements. Every write is a command (ADR 42), so in replicated mode one
 * call on any sidecar has the same effect on all of them, and it is audited
 * with the caller's reason code like every admin write.
 */
export class BillingAdmin {
  private readonly kinds;

  constructor(
    private readonly deps: {
      audited: AuditedWriter; writer: RevisionWriter; billing: SqliteBillingStore; directory: Pick<DirectoryStore, "tenantById">;
      projector: BillingProjector; commands: CommandWriter; registry: CommandRegistry;
      /** Undefined without BULKHEAD_STRIPE_API_KEY: reconcile is then refused. */
      stripe?: Stripe;
    },
  ) {
    const r = deps.registry;
    this.kinds = {
      replay: r.register(adminCommand("billing.replay", (_tx, b: { eventId: string }, by) => this.applyReplay(b.eventId, by))),
      recalculate: r.register(adminCommand("billing.recalculate", (_tx, b: { tenantId: string }, by) => this.applyRecalculate(b.tenantId, by))),
      // The body carries what Stripe listed, so no sidecar applying it calls Stripe.
      reconcile: r.register(adminCommand("billing.reconcile", (_tx, b: { listedAt: number; subscriptions: SubscriptionFacts[] }, by) =>
        this.applyReconcile(b.subscriptions, b.listedAt, by))),
    };
  }

  /** Re-applies a stored event; watermarks still apply, so it never rolls state back. */
  async replayEvent(eventId: string, by: AdminActor): Promise<IngestResult> {
    // Checked here too so a wrong id appends nothing; applying checks again.
    if (!this.deps.billing.event(eventId)) throw noEvent(eventId);
    return this.run(this.kinds.replay, { eventId }, by);
  }

  /** Re-derives the tenant's plan, billing status and seats from its mirrored subscriptions. */
  async recalculateEntitlements(tenantId: string, by: AdminActor): Promise<WriteResult> {
    if (!this.deps.directory.tenantById(tenantId)) throw noTenant(tenantId);
    return this.run(this.kinds.recalculate, { tenantId }, by);
  }

  /**
   * Lists every subscription from Stripe on this sidecar and compares it with
   * the mirror. A dry run returns the drift and writes nothing; otherwise ONE
   * command carrying the listed facts repairs the drift everywhere.
   */
  async reconcile(options: { dryRun: boolean; now: number }, by: AdminActor): Promise<ReconcileReport & { revision: number | null }> {
    if (!this.deps.stripe) throw new BulkheadError("ADMIN_CONFLICT", "reconcile needs the Stripe API: set BULKHEAD_STRIPE_API_KEY on this sidecar");
    const subscriptions = await listSubscriptionFacts(this.deps.stripe);
    const found = findDrift(this.deps, subscriptions);
    if (options.dryRun || found.drift.length === 0) {
      return { checked: subscriptions.length, drift: found.drift, unmapped: found.unmapped, applied: false, revision: null };
    }
    return this.run(this.kinds.reconcile, { listedAt: options.now, subscriptions }, by);
  }

  /** Recent Stripe events naming the tenant, newest first, with what became of each. */
  listEvents(tenantId: string, limit: number) {
    if (!this.deps.directory.tenantById(tenantId)) throw noTenant(tenantId);
    return this.deps.billing.recentTenantEvents(tenantId, limit);
  }

  private async run<B, R>(kind: CommandKind<AdminBody<B>, R>, body: B, by: AdminActor): Promise<R & { revision: number }> {
    const { result, revision } = await this.deps.commands.run(kind, { ...body, by: commandActor(by) });
    return { ...result, revision };
  }

  private applyReplay(eventId: string, by: CommandActor): Omit<IngestResult, "revision"> {
    if (!this.deps.billing.event(eventId)) throw noEvent(eventId);
    const { outcome, tenantId } = this.deps.projector.replay(eventId, by.caller.actor, by.reason, by.source);
    return { outcome, tenantId };
  }

  private applyRecalculate(tenantId: string, by: CommandActor): Omit<WriteResult, "revision"> {
    if (!this.deps.directory.tenantById(tenantId)) throw noTenant(tenantId);
    const { changed } = this.deps.audited.write(by, { tenantId, object: `tenant:${tenantId}`, action: "billing.recalculate" }, (tx) =>
      this.deps.projector.recomputeTenant(tx, tenantId));
    return { changed };
  }

  private applyReconcile(subscriptions: SubscriptionFacts[], listedAt: number, by: CommandActor): ReconcileReport {
    return repairDrift(this.deps, subscriptions, listedAt, { actor: by.caller.actor, reason: by.reason, source: by.source });
  }
}

function noEvent(eventId: string): BulkheadError {
  return new BulkheadError("ADMIN_NOT_FOUND", `event_id: no stored billing event ${eventId}`, "event_id");
}

function noTenant(tenantId: string): BulkheadError {
  return new BulkheadError("ADMIN_NOT_FOUND", `tenant_id: no tenant ${tenantId}`, "tenant_id");
}
