import { readFileSync } from "node:fs";
import { join } from "node:path";
import Stripe from "stripe";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { epochSeconds, FAR_FUTURE_SECONDS, MINUTE } from "./test-time.js";

// Real-shaped Stripe objects (Stripe's fixtures3.json), with the fields under
// test set, wrapped in the event envelope and signed exactly as Stripe signs.
const FIXTURES = JSON.parse(readFileSync(join(PACKAGE_ROOT, "test", "fixtures", "stripe", "fixtures3.json"), "utf8")).resources as Record<
  string,
  Record<string, unknown>
>;
const signer = new Stripe("sk_test_signing_only");

export interface SubscriptionSpec {
  id: string;
  customer: string;
  status: string;
  plan: string | null;
  seats?: number;
  cancelAtPeriodEnd?: boolean;
  /** Epoch seconds. */
  periodEnd?: number;
  tenantId?: string;
}

export function subscriptionObject(spec: SubscriptionSpec): Record<string, unknown> {
  const sub = structuredClone(FIXTURES.subscription!) as Record<string, any>;
  const template = sub.items.data[0];
  const item = (id: string, lookupKey: string | null, quantity: number) => ({
    ...structuredClone(template),
    id,
    quantity,
    subscription: spec.id,
    current_period_end: spec.periodEnd ?? FAR_FUTURE_SECONDS,
    price: { ...structuredClone(template.price), id: `price_${lookupKey ?? "none"}`, lookup_key: lookupKey },
  });
  sub.id = spec.id;
  sub.customer = spec.customer;
  sub.status = spec.status;
  sub.cancel_at_period_end = spec.cancelAtPeriodEnd ?? false;
  sub.metadata = spec.tenantId ? { tenant_id: spec.tenantId } : {};
  sub.items = {
    ...sub.items,
    data: [item(`si_${spec.id}_plan`, spec.plan, 1), ...(spec.seats ? [item(`si_${spec.id}_seats`, "seats", spec.seats)] : [])],
  };
  return sub;
}

export function fixture(name: string, fields: Record<string, unknown>): Record<string, unknown> {
  return { ...structuredClone(FIXTURES[name]!), ...fields };
}

export function event(id: string, type: string, object: Record<string, unknown>, createdSeconds: number): string {
  return JSON.stringify({
    id,
    object: "event",
    api_version: "2025-06-30.basil",
    created: createdSeconds,
    data: { object, previous_attributes: {} },
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  });
}

export function sign(payload: string, secret: string, timestampSeconds: number): string {
  return signer.webhooks.generateTestHeaderString({ payload, secret, timestamp: timestampSeconds });
}

/** POSTs a payload to the sidecar's webhook endpoint; `header` null sends none. */
export async function deliver(httpPort: number, payload: string, header: string | null): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8", ...(header !== null && { "stripe-signature": header }) },
    body: payload,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** stripe-mock's one subscription (Stripe's fixture), active, for this customer: reconcile tests drift from it. */
export const STRIPE_MOCK_SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";
export const STRIPE_MOCK_CUSTOMER = "cus_QXg1o8vcGmoR32";

/**
 * A signed customer.subscription.updated for stripe-mock's subscription, on
 * the plan "pro" with `status`, created a minute before `nowMs`, delivered to
 * the webhook; answers the outcome. A status other than active makes drift.
 */
export async function deliverMockSubscription(
  httpPort: number, secret: string, eventId: string, status: string, nowMs: number, tenantId?: string,
): Promise<unknown> {
  const object = subscriptionObject({ id: STRIPE_MOCK_SUBSCRIPTION, customer: STRIPE_MOCK_CUSTOMER, status, plan: "pro", ...(tenantId && { tenantId }) });
  const payload = event(eventId, "customer.subscription.updated", object, epochSeconds(nowMs - MINUTE));
  return (await deliver(httpPort, payload, sign(payload, secret, epochSeconds(nowMs)))).body.outcome;
}
