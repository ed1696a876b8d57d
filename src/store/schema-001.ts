// Migration 1. STRICT tables so a wrongly typed value is an error, not a
// silently coerced row. Times are epoch milliseconds.
export const schema001 = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('revision', 0);

-- One row per (committed write transaction, tenant it touched). tenant_id NULL
-- means the change is global (plans, flags) and touches every tenant.
CREATE TABLE changes (
  revision  INTEGER NOT NULL,
  tenant_id TEXT,
  kind      TEXT NOT NULL,
  at        INTEGER NOT NULL
) STRICT;
CREATE INDEX changes_by_revision ON changes (revision);

CREATE TABLE plans (
  code       TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE plan_entitlements (
  plan_code   TEXT NOT NULL REFERENCES plans (code) ON DELETE CASCADE,
  entitlement TEXT NOT NULL,
  PRIMARY KEY (plan_code, entitlement)
) STRICT;

-- The meter catalog. consumable: metered by Consume/Reserve in reset windows;
-- count: a resource count the host reports (projects); seats: derived from
-- active and invited memberships, never consumed directly.
CREATE TABLE meters (
  name        TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('consumable', 'count', 'seats')),
  reset       TEXT NOT NULL DEFAULT 'none' CHECK (reset IN ('none', 'calendar_month', 'billing_period')),
  description TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE plan_limits (
  plan_code TEXT NOT NULL REFERENCES plans (code) ON DELETE CASCADE,
  meter     TEXT NOT NULL REFERENCES meters (name),
  soft      INTEGER,
  hard      INTEGER,
  PRIMARY KEY (plan_code, meter)
) STRICT;

CREATE TABLE tenants (
  id             TEXT PRIMARY KEY,
  slug           TEXT NOT NULL UNIQUE,
  name           TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
  plan_code      TEXT NOT NULL REFERENCES plans (code),
  billing_status TEXT NOT NULL,
  region         TEXT NOT NULL,
  isolation_tier TEXT NOT NULL DEFAULT 'shared',
  tags           TEXT NOT NULL DEFAULT '[]',
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
  id           TEXT PRIMARY KEY,
  email        TEXT NOT NULL,
  display_name TEXT NOT NULL,
  created_at   INTEGER NOT NULL
) STRICT;

-- actor_id is a user or a service account, so it carries no foreign key.
CREATE TABLE memberships (
  tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  actor_id   TEXT NOT NULL,
  actor_type TEXT NOT NULL CHECK (actor_type IN ('user', 'service_account')),
  role       TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'invited')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, actor_id)
) STRICT;

CREATE TABLE custom_roles (
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  permissions TEXT NOT NULL,
  PRIMARY KEY (tenant_id, name)
) STRICT;

CREATE TABLE entitlement_overrides (
  id          INTEGER PRIMARY KEY,
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  entitlement TEXT NOT NULL,
  effect      TEXT NOT NULL CHECK (effect IN ('grant', 'revoke')),
  reason      TEXT NOT NULL,
  author      TEXT NOT NULL,
  expires_at  INTEGER,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX entitlement_overrides_by_tenant ON entitlement_overrides (tenant_id);

CREATE TABLE usage_counters (
  tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  meter        TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  used         INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
  PRIMARY KEY (tenant_id, meter, window_start)
) STRICT;

CREATE TABLE flags (
  key         TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('release', 'experiment', 'ops', 'kill_switch', 'permission')),
  description TEXT NOT NULL,
  owner       TEXT NOT NULL,
  risk        TEXT NOT NULL DEFAULT 'low',
  enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  created_at  INTEGER NOT NULL,
  cleanup_at  INTEGER
) STRICT;

CREATE TABLE flag_rules (
  flag_key TEXT NOT NULL REFERENCES flags (key) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  rule     TEXT NOT NULL,
  params   TEXT NOT NULL,
  PRIMARY KEY (flag_key, position)
) STRICT;

-- Append-only audit of decisions, written in batches off the hot path.
CREATE TABLE decision_log (
  decision_id        TEXT PRIMARY KEY,
  at                 INTEGER NOT NULL,
  tenant_id          TEXT NOT NULL,
  actor_id           TEXT NOT NULL,
  actor_type         TEXT NOT NULL,
  action             TEXT NOT NULL,
  resource_type      TEXT NOT NULL,
  resource_id        TEXT NOT NULL,
  resource_tenant_id TEXT NOT NULL,
  allow              INTEGER NOT NULL,
  reasons            TEXT NOT NULL,
  policy_revision    TEXT NOT NULL,
  store_revision     INTEGER NOT NULL,
  request_id         TEXT NOT NULL,
  source             TEXT NOT NULL
) STRICT;
CREATE INDEX decision_log_by_tenant ON decision_log (tenant_id, at);
`;
