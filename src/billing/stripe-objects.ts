/**
 * The few facts Bulkhead reads from Stripe objects, taken defensively from
 * the webhook JSON: Stripe is an integration, these are the seams. Times
 * become epoch milliseconds.
 */
type Json = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === "string" && v !== "" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Json => (typeof v === "object" && v !== null ? (v as Json) : {});
const ms = (seconds: unknown): number | null => (num(seconds) === null ? null : (seconds as number) * 1000);
/** An expandable field is an id or the object itself. */
const idOf = (v: unknown): string | null => str(v) ?? str(obj(v).id);

export interface SubscriptionItemFacts {
  id: string;
  priceId: string;
  lookupKey: string | null;
  quantity: number;
}

export interface SubscriptionFacts {
  id: string;
  customerId: string;
  status: string;
  created: number;
  cancelAtPeriodEnd: boolean;
  currentPeriodEnd: number | null;
  trialEnd: number | null;
  tenantHint: string | null;
  items: SubscriptionItemFacts[];
}

export function subscriptionFacts(o: Json): SubscriptionFacts {
  const items = (obj(o.items).data as Json[] | undefined ?? []).map((item) => {
    const price = obj(item.price);
    return { id: String(item.id), priceId: idOf(item.price) ?? "", lookupKey: str(price.lookup_key), quantity: num(item.quantity) ?? 1 };
  });
  // Newer API versions keep the period on items; older ones on the subscription.
  const periodEnds = [num(o.current_period_end), ...((obj(o.items).data as Json[] | undefined) ?? []).map((i) => num(i.current_period_end))];
  const known = periodEnds.filter((p): p is number => p !== null);
  return {
    id: String(o.id),
    customerId: idOf(o.customer) ?? "",
    status: str(o.status) ?? "incomplete",
    created: ms(o.created) ?? 0,
    cancelAtPeriodEnd: o.cancel_at_period_end === true,
    currentPeriodEnd: known.length > 0 ? Math.max(...known) * 1000 : null,
    trialEnd: ms(o.trial_end),
    tenantHint: str(obj(o.metadata).tenant_id),
    items,
  };
}

export interface InvoiceFacts {
  id: string;
  customerId: string;
  subscriptionId: string | null;
  status: string;
  amountDue: number;
  amountPaid: number;
  currency: string;
}

export function invoiceFacts(o: Json): InvoiceFacts {
  const parent = obj(obj(o.parent).subscription_details);
  return {
    id: String(o.id),
    customerId: idOf(o.customer) ?? "",
    subscriptionId: idOf(o.subscription) ?? idOf(parent.subscription),
    status: str(o.status) ?? "draft",
    amountDue: num(o.amount_due) ?? 0,
    amountPaid: num(o.amount_paid) ?? 0,
    currency: str(o.currency) ?? "usd",
  };
}

export function customerFacts(o: Json): { id: string; tenantHint: string | null } {
  return { id: String(o.id), tenantHint: str(obj(o.metadata).tenant_id) };
}

/** Only metadata.tenant_id, which the merchant's server sets: client_reference_id can come from a buyer's URL. */
export function checkoutFacts(o: Json): { customerId: string | null; tenantHint: string | null } {
  return { customerId: idOf(o.customer), tenantHint: str(obj(o.metadata).tenant_id) };
}

export interface EntitlementSummaryFacts {
  customerId: string;
  features: string[];
  /** false when Stripe sent only the first page (has_more). */
  complete: boolean;
}

export function entitlementSummaryFacts(o: Json): EntitlementSummaryFacts {
  const list = obj(o.entitlements);
  const data = (list.data as Json[] | undefined) ?? [];
  return {
    customerId: idOf(o.customer) ?? "",
    features: data.map((e) => str(e.lookup_key) ?? str(obj(e.feature).lookup_key)).filter((k): k is string => k !== null),
    complete: list.has_more !== true,
  };
}
