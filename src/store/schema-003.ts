// Migration 3: the billing domain (Stripe is an integration, this is the model).
export const schema003 = `
-- Stripe customer -> tenant, from metadata.tenant_id or checkout.
CREATE TABLE billing_customers (
  customer_id TEXT PRIMARY KEY,
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE subscriptions (
  id                   TEXT PRIMARY KEY,
  tenant_id            TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  customer_id          TEXT NOT NULL,
  status               TEXT NOT NULL,
  status_since         INTEGER NOT NULL,
  plan_code            TEXT,
  cancel_at_period_end INTEGER NOT NULL CHECK (cancel_at_period_end IN (0, 1)),
  current_period_end   INTEGER,
  trial_end            INTEGER,
  created              INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
) STRICT;
CREATE INDEX subscriptions_by_tenant ON subscriptions (tenant_id);

CREATE TABLE subscription_items (
  id              TEXT PRIMARY KEY,
  subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  price_id        TEXT NOT NULL,
  lookup_key      TEXT,
  quantity        INTEGER NOT NULL
) STRICT;
CREATE INDEX subscription_items_by_subscription ON subscription_items (subscription_id);

CREATE TABLE invoices (
  id              TEXT PRIMARY KEY,
  tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  customer_id     TEXT NOT NULL,
  subscription_id TEXT,
  status          TEXT NOT NULL,
  amount_due      INTEGER NOT NULL,
  amount_paid     INTEGER NOT NULL,
  currency        TEXT NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;

-- Every delivered event, once (the Stripe event id is the key); the payload
-- is kept so an event can be replayed after a mapping is fixed.
CREATE TABLE billing_events (
  event_id    TEXT PRIMARY KEY,
  type        TEXT NOT NULL,
  created     INTEGER NOT NULL,
  object_id   TEXT NOT NULL,
  tenant_id   TEXT,
  outcome     TEXT NOT NULL CHECK (outcome IN ('applied', 'stale', 'unmapped', 'unhandled')),
  payload     TEXT NOT NULL,
  received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX billing_events_by_outcome ON billing_events (outcome);

-- Per Stripe object, the newest event applied: an older one never overwrites it.
CREATE TABLE billing_watermarks (
  object_id TEXT PRIMARY KEY,
  created   INTEGER NOT NULL,
  event_id  TEXT NOT NULL
) STRICT;

-- Stripe Entitlements features active for a tenant (lookup keys).
CREATE TABLE billing_features (
  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  feature   TEXT NOT NULL,
  PRIMARY KEY (tenant_id, feature)
) STRICT;

-- The governing subscription's timing facts, for access decisions that
-- change with time alone (past_due grace, cancel at period end).
CREATE TABLE billing_state (
  tenant_id            TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  status_since         INTEGER NOT NULL,
  cancel_at_period_end INTEGER NOT NULL,
  current_period_end   INTEGER
) STRICT;

-- Billing status -> access per plan, overriding policies/data/billing_access.json.
CREATE TABLE plan_billing_access (
  plan_code      TEXT NOT NULL REFERENCES plans (code) ON DELETE CASCADE,
  billing_status TEXT NOT NULL,
  access         TEXT NOT NULL CHECK (access IN ('full', 'read_only', 'none')),
  PRIMARY KEY (plan_code, billing_status)
) STRICT;

-- Price lookup keys that name a plan other than by its code.
CREATE TABLE plan_lookup_keys (
  lookup_key TEXT PRIMARY KEY,
  plan_code  TEXT NOT NULL REFERENCES plans (code) ON DELETE CASCADE
) STRICT;

-- Operator actions (billing replay, reconcile; the admin API later), written
-- in the same transaction as the change they describe.
CREATE TABLE admin_audit (
  id        INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,
  actor     TEXT NOT NULL,
  tenant_id TEXT,
  object    TEXT NOT NULL,
  action    TEXT NOT NULL,
  reason    TEXT NOT NULL,
  source    TEXT NOT NULL,
  result    TEXT NOT NULL
) STRICT;
`;
