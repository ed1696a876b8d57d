import type { FastifyInstance } from "fastify";
import type { BillingCommands } from "../../billing/billing-commands.js";
import { verifyStripeEvent, WebhookSignatureError, type stripeClient } from "../../billing/stripe-webhook.js";
import type { Clock } from "../../clock.js";
import type { Metrics } from "../../metrics.js";
import type { Logger } from "../../log/logger.js";
import { headerCarrier, TRACING_OFF, type Tracing } from "../../telemetry/tracing.js";

export interface StripeWebhookDeps {
  /** Ingests a verified event as a command: applied locally, or through the change log in replicated mode. */
  billing: Pick<BillingCommands, "ingest">;
  secrets: readonly string[];
  clock: Clock;
  metrics: Pick<Metrics, "billingEvents">;
  /** For the pages of an entitlement summary Stripe did not include; absent = no API access. */
  stripe?: ReturnType<typeof stripeClient>;
  logger: Logger;
  /** One span per delivery, parented on the caller's traceparent; absent = off. */
  tracing?: Tracing;
}

const BODY_LIMIT = 1024 * 1024;

/**
 * POST /webhooks/stripe, in its own encapsulated scope so the raw-body parser
 * (signatures are over the exact bytes) applies to this route only. 200 only
 * after the event's transaction committed; 400 for a bad or missing
 * signature (nothing stored); 500 on internal failure so Stripe retries.
 */
export async function registerStripeWebhook(app: FastifyInstance, deps: StripeWebhookDeps): Promise<void> {
  const tracing = deps.tracing ?? TRACING_OFF;
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: BODY_LIMIT }, (_request, body, done) => done(null, body));
    scope.post("/webhooks/stripe", (request, reply) =>
      tracing.inSpan("POST /webhooks/stripe", headerCarrier(request.headers), async (span) => {
        span.set({ "http.request.method": "POST", "http.route": "/webhooks/stripe" });
        const answer = (code: number, outcome: string, payload: object) => {
          span.set({ "http.response.status_code": code, "bulkhead.billing.outcome": outcome });
          if (code >= 400) span.fail(outcome);
          return reply.code(code).send(payload);
        };
        if (deps.secrets.length === 0) {
          return answer(500, "not_configured", { error: "BULKHEAD_STRIPE_WEBHOOK_SECRETS is not configured" });
        }
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        let event;
        try {
          const header = request.headers["stripe-signature"];
          event = verifyStripeEvent(raw, typeof header === "string" ? header : undefined, deps.secrets, deps.clock.now());
        } catch (error) {
          if (!(error instanceof WebhookSignatureError)) throw error;
          deps.metrics.billingEvents.inc({ outcome: "bad_signature", type: "unverified" });
          // warn: a stream of these is a misconfigured secret or someone probing the endpoint.
          deps.logger.warn({ route: "/webhooks/stripe", reason: error.message, bytes: raw.length, remoteAddress: request.ip }, "stripe webhook rejected: nothing stored");
          return answer(400, "bad_signature", { error: error.message });
        }
        // Only once the signature holds: an unsigned body's claims are not worth recording.
        span.set({ "bulkhead.stripe.event_id": event.id, "bulkhead.stripe.event_type": event.type });
        try {
          await completeEntitlementSummary(event.type, event.object, deps.stripe);
          const result = await deps.billing.ingest(event);
          deps.metrics.billingEvents.inc({ outcome: result.outcome, type: eventTypeLabel(event.type) });
          if (result.tenantId) span.set({ "bulkhead.tenant_id": result.tenantId });
          const fields = { route: "/webhooks/stripe", eventId: event.id, eventType: event.type, outcome: result.outcome, ...(result.tenantId && { tenantId: result.tenantId }) };
          if (result.outcome === "unmapped") deps.logger.warn(fields, "stripe webhook names no known tenant: stored, not applied");
          else deps.logger.info(fields, "stripe webhook ingested");
          return answer(200, result.outcome, { received: true, outcome: result.outcome, store_revision: result.revision });
        } catch (error) {
          deps.metrics.billingEvents.inc({ outcome: "failed", type: eventTypeLabel(event.type) });
          deps.logger.error({ route: "/webhooks/stripe", eventId: event.id, eventType: event.type, err: error }, "stripe webhook failed: answered 500, Stripe will retry");
          return answer(500, "failed", { error: "internal error; retry" });
        }
      }),
    );
  });
}

/**
 * Stripe sends only the first page of an entitlement summary. The rest is
 * fetched (before the transaction) so a partial list never removes features;
 * without API access such an event fails with 500 and Stripe retries.
 */
async function completeEntitlementSummary(type: string, object: Record<string, unknown>, stripe: StripeWebhookDeps["stripe"]): Promise<void> {
  if (type !== "entitlements.active_entitlement_summary.updated") return;
  const list = object.entitlements as { has_more?: boolean; data?: unknown[] } | undefined;
  if (!list?.has_more) return;
  if (!stripe) throw new Error("entitlement summary has more pages and BULKHEAD_STRIPE_API_KEY is not configured");
  const customer = String(object.customer);
  const all: unknown[] = [];
  for await (const entitlement of stripe.entitlements.activeEntitlements.list({ customer, limit: 100 })) all.push(entitlement);
  object.entitlements = { ...list, data: all, has_more: false };
}

/**
 * The event type as a metric label. Only verified events get here, so the
 * types are Stripe's own (a bounded set, the ones the endpoint subscribes
 * to); anything shaped otherwise is "other", so a label can never carry
 * free text or grow without bound.
 */
function eventTypeLabel(type: string): string {
  return /^[a-z][a-z0-9_.]{0,63}$/.test(type) ? type : "other";
}
