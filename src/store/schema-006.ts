// Migration 6: an approval stores the exact content it covers (canonical
// JSON), so the approver can read it and a write is compared with it byte for
// byte. Approvals written before this migration have no content and can no
// longer be spent: their 48-bit digests were too short to bind content.
//
// Every tenant a user has ever been a member of is remembered, by a trigger
// on the memberships table itself, so no write path can skip it: a profile
// another tenant has seen stays shared (and needs a second approval to
// change) even after that membership is removed for a moment.
export const schema006 = `
ALTER TABLE approvals ADD COLUMN content_json TEXT NOT NULL DEFAULT '';

CREATE TABLE membership_history (
  actor_id   TEXT NOT NULL,
  tenant_id  TEXT NOT NULL,
  first_seen INTEGER NOT NULL,
  PRIMARY KEY (actor_id, tenant_id)
) STRICT, WITHOUT ROWID;
INSERT OR IGNORE INTO membership_history (actor_id, tenant_id, first_seen)
  SELECT actor_id, tenant_id, created_at FROM memberships;
CREATE TRIGGER memberships_remembered AFTER INSERT ON memberships BEGIN
  INSERT OR IGNORE INTO membership_history (actor_id, tenant_id, first_seen) VALUES (NEW.actor_id, NEW.tenant_id, NEW.created_at);
END;
`;
