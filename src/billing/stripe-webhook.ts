import Stripe from "stripe";
import type { BillingEvent } from "./billing-projector.js";

/** Stripe's signature tolerance: events signed more than 5 minutes ago are refused. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export class WebhookSignatureError extends Error {
  override readonly name = "WebhookSignatureError";
}

// The API key is irrelevant to signature checks; one client serves them all.
const verifier = new Stripe("sk_signature_checks_only");

/**
 * Verifies the raw, unparsed body against every configured signing secret
 * (several during rotation) with Stripe's own constructEvent, and returns the
 * event. `now` is injected so tests can pin the clock.
 */
export function verifyStripeEvent(raw: Buffer, header: string | undefined, secrets: readonly string[], now: number): BillingEvent {
  if (!header) throw new WebhookSignatureError("missing Stripe-Signature header");
  let lastError: unknown;
  for (const secret of secrets) {
    try {
      const event = verifier.webhooks.constructEvent(raw, header, secret, SIGNATURE_TOLERANCE_SECONDS, undefined, now);
      return {
        id: event.id,
        type: event.type,
        created: event.created * 1000,
        object: event.data.object as unknown as Record<string, unknown>,
        payload: raw.toString("utf8"),
      };
    } catch (error) {
      lastError = error;
    }
  }
  throw new WebhookSignatureError(lastError instanceof Error ? lastError.message.split("\n")[0]! : "signature verification failed");
}

/** A Stripe API client; host, port and protocol come from BULKHEAD_STRIPE_API_URL (stripe-mock in tests). */
export function stripeClient(apiKey: string, apiUrl: string): Stripe {
  if (!apiUrl) return new Stripe(apiKey);
  const url = new URL(apiUrl);
  return new Stripe(apiKey, {
    host: url.hostname,
    port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
    protocol: url.protocol.replace(":", "") as "http" | "https",
    maxNetworkRetries: 2,
  });
}
