import type { CommandWriter } from "../store/command-writer.js";
import { objectBody, stringField, type CommandKind, type CommandRegistry } from "../store/store-command.js";
import type { BillingEvent, BillingProjector, IngestResult } from "./billing-projector.js";

/**
 * Stripe webhook deliveries as commands (ADR 62). The body is the verified
 * event with its object as this sidecar completed it (an entitlement
 * summary's further pages were fetched before), so applying it needs no
 * Stripe API and gives the same state on every sidecar.
 */
export class BillingCommands {
  private readonly ingestKind: CommandKind<BillingEvent, Omit<IngestResult, "revision">>;

  constructor(private readonly deps: { projector: BillingProjector; commands: CommandWriter; registry: CommandRegistry }) {
    this.ingestKind = deps.registry.register({
      type: "billing.stripe_event",
      version: 1,
      decode: (raw) => decodeBillingEvent(raw),
      apply: (_tx, event) => {
        const { outcome, tenantId } = deps.projector.ingest(event);
        return { outcome, tenantId };
      },
    });
  }

  /**
   * One delivery. Its log message id is the Stripe event id, so the same
   * event delivered to two sidecars within JetStream's duplicate window is
   * stored once; later the event table makes it a "duplicate" as before.
   * A delivery this sidecar already applied is answered here, appending nothing.
   */
  async ingest(event: BillingEvent): Promise<IngestResult> {
    const { result, revision } = await this.deps.commands.run(this.ingestKind, event, {
      messageId: `stripe-event:${event.id}`,
      settledLocally: (answer) => answer.outcome === "duplicate",
    });
    return { ...result, revision };
  }
}

function decodeBillingEvent(raw: unknown): BillingEvent {
  const body = objectBody(raw);
  const created = body.created;
  if (!Number.isSafeInteger(created)) throw new Error("created is not an integer");
  return {
    id: stringField(body, "id"),
    type: stringField(body, "type"),
    created: created as number,
    object: objectBody(body.object),
    payload: stringField(body, "payload"),
  };
}
