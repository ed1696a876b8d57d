// Migration 2: add-ons, limit overrides, reservations, idempotency keys,
// soft-limit warnings and the outbox (entitlements and metering issue).
export const schema002 = `
CREATE TABLE addons (
  code       TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE addon_entitlements (
  addon_code  TEXT NOT NULL REFERENCES addons (code) ON DELETE CASCADE,
  entitlement TEXT NOT NULL,
  PRIMARY KEY (addon_code, entitlement)
) STRICT;

-- Per unit of quantity: a tenant with 3 units of an add-on gets 3 x these.
CREATE TABLE addon_limits (
  addon_code TEXT NOT NULL REFERENCES addons (code) ON DELETE CASCADE,
  meter      TEXT NOT NULL REFERENCES meters (name),
  soft       INTEGER,
  hard       INTEGER,
  PRIMARY KEY (addon_code, meter)
) STRICT;

CREATE TABLE tenant_addons (
  tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  addon_code TEXT NOT NULL REFERENCES addons (code),
  quantity   INTEGER NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (tenant_id, addon_code)
) STRICT;

-- Replaces the plan + add-on limit of one meter while active.
CREATE TABLE limit_overrides (
  id         INTEGER PRIMARY KEY,
  tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  meter      TEXT NOT NULL REFERENCES meters (name),
  soft       INTEGER,
  hard       INTEGER,
  reason     TEXT NOT NULL,
  author     TEXT NOT NULL,
  expires_at INTEGER,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX limit_overrides_by_tenant ON limit_overrides (tenant_id);

CREATE TABLE usage_reservations (
  id           TEXT PRIMARY KEY,
  tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  meter        TEXT NOT NULL REFERENCES meters (name),
  window_start INTEGER NOT NULL,
  amount       INTEGER NOT NULL CHECK (amount > 0),
  state        TEXT NOT NULL CHECK (state IN ('held', 'committed', 'released', 'expired')),
  expires_at   INTEGER NOT NULL,
  created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX usage_reservations_held ON usage_reservations (tenant_id, meter, window_start) WHERE state = 'held';

-- A retried call with the same key returns the stored answer; the same key
-- with a different request is refused.
CREATE TABLE idempotency_keys (
  tenant_id    TEXT NOT NULL,
  key          TEXT NOT NULL,
  operation    TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  response     TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, key)
) STRICT;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);

-- One row per (tenant, meter, window, threshold): warnings go out once.
CREATE TABLE usage_warnings (
  tenant_id    TEXT NOT NULL,
  meter        TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  threshold    TEXT NOT NULL,
  PRIMARY KEY (tenant_id, meter, window_start, threshold)
) STRICT;

CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id  TEXT NOT NULL,
  kind       TEXT NOT NULL,
  payload    TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revision   INTEGER NOT NULL
) STRICT;
`;
