import { createHash } from "node:crypto";
import type Stripe from "stripe";
import { adminCommand, commandActor, type AdminActor, type AdminBody, type AuditedWriter, type CommandActor, type WriteResult } from "../audit/audited-write.js";
import { BulkheadError } from "../errors.js";
import type { CommandWriter } from "../store/command-writer.js";
import type { RevisionWriter } from "../store/revision-writer.js";
import type { CommandKind, CommandRegistry } from "../store/store-command.js";
import type { DirectoryStore } from "../directory/directory-store.js";
import type { BillingProjector, IngestResult } from "./billing-projector.js";
import type { SqliteBillingStore } from "./billing-store.js";
import { findDrift, listSubscriptionFacts, repairDrift, type Drift, type ReconcileReport } from "./reconcile.js";
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
  async replayEvent(eventId: string, by: AdminActor, scope: { tenantId?: string } = {}): Promise<IngestResult> {
    // Checked here too so a wrong id appends nothing; applying checks again.
    const stored = this.deps.billing.event(eventId);
    if (!stored) throw noEvent(eventId);
    // The console replays from one selected tenant's page: another tenant's event is not there to replay.
    if (scope.tenantId !== undefined && stored.tenantId !== scope.tenantId) throw noEvent(eventId, scope.tenantId);
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
   * `tenantId` keeps only that tenant's subscriptions (the console's selected
   * tenant); `expectedPlan` refuses to apply unless the drift found now is
   * the one a dry run showed (its `plan`), so staff apply what they reviewed (ADR 88).
   */
  async reconcile(
    options: { dryRun: boolean; now: number; tenantId?: string; expectedPlan?: string },
    by: AdminActor,
  ): Promise<ReconcileReport & { revision: number | null; plan: string }> {
    if (!this.deps.stripe) throw new BulkheadError("ADMIN_CONFLICT", "reconcile needs the Stripe API: set BULKHEAD_STRIPE_API_KEY on this sidecar");
    const listed = await listSubscriptionFacts(this.deps.stripe);
    const subscriptions = options.tenantId === undefined ? listed : listed.filter((s) => this.deps.projector.tenantFor(s.customerId, s.tenantHint) === options.tenantId);
    const found = findDrift(this.deps, subscriptions);
    const plan = driftPlan(found.drift);
    if (!options.dryRun && options.expectedPlan !== undefined && options.expectedPlan !== plan) {
      throw new BulkheadError("ADMIN_CONFLICT", "plan: the drift changed since the dry run; run the dry run again and review it", "plan");
    }
    if (options.dryRun || found.drift.length === 0) {
      return { checked: subscriptions.length, drift: found.drift, unmapped: found.unmapped, applied: false, revision: null, plan };
    }
    return { ...(await this.run(this.kinds.reconcile, { listedAt: options.now, subscriptions }, by)), plan };
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

function noEvent(eventId: string, tenantId?: string): BulkheadError {
  return new BulkheadError("ADMIN_NOT_FOUND", `event_id: no stored billing event ${eventId}${tenantId === undefined ? "" : ` for tenant ${tenantId}`}`, "event_id");
}

/** A short fingerprint of a drift list: what a dry run showed, carried by the apply that follows it. */
export function driftPlan(drift: readonly Drift[]): string {
  return createHash("sha256").update(JSON.stringify(drift)).digest("hex").slice(0, 16);
}

function noTenant(tenantId: string): BulkheadError {
  return new BulkheadError("ADMIN_NOT_FOUND", `tenant_id: no tenant ${tenantId}`, "tenant_id");
}
