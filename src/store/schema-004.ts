// Migration 4: API keys (identity). Secrets are never stored: only a keyed
// hash (HMAC-SHA256 with a server secret) of the whole key.
export const schema004 = `
CREATE TABLE api_keys (
  id             TEXT PRIMARY KEY,
  tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name           TEXT NOT NULL,
  secret_hash    TEXT NOT NULL,
  scopes         TEXT NOT NULL,
  rate_per_min   INTEGER NOT NULL CHECK (rate_per_min > 0),
  expires_at     INTEGER,
  revoked_at     INTEGER,
  -- After a rotation the old key keeps working until this time.
  retires_at     INTEGER,
  replaced_by    TEXT,
  created_at     INTEGER NOT NULL,
  created_by     TEXT NOT NULL
) STRICT;
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);
`;
