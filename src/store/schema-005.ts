// Migration 5: staff (operators of the sidecar, separate from customer
// members), their time-boxed impersonation sessions, and the second-approver
// records that global (all_tenants) admin writes need. Staff tokens are
// stored as a keyed hash, like API keys.
export const schema005 = `
CREATE TABLE staff (
  id          TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  role        TEXT NOT NULL CHECK (role IN ('support_agent', 'support_admin', 'finance', 'engineer')),
  status      TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
  token_hash  TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE impersonations (
  id          TEXT PRIMARY KEY,
  staff_id    TEXT NOT NULL REFERENCES staff (id),
  tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  as_actor_id TEXT NOT NULL,
  reason      TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  ended_at    INTEGER
) STRICT;
CREATE INDEX impersonations_by_staff ON impersonations (staff_id, tenant_id, expires_at);

CREATE TABLE approvals (
  id           TEXT PRIMARY KEY,
  action       TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  reason       TEXT NOT NULL,
  approved_by  TEXT,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  used_at      INTEGER
) STRICT;

-- The decision log shows who was really acting during an impersonation.
ALTER TABLE decision_log ADD COLUMN impersonation TEXT NOT NULL DEFAULT '';
`;
