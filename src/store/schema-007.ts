// Migration 7: a tenant's seat count (active plus invited members) kept as a
// counter by triggers, so a cold Check costs the same at 20 members as at
// 200,000; counting the rows made it grow with the tenant (25 ms at 200,000).
// Triggers on the memberships table itself keep every write path honest.
export const schema007 = `
CREATE TABLE tenant_seats (
  tenant_id TEXT PRIMARY KEY,
  seats     INTEGER NOT NULL CHECK (seats >= 0)
) STRICT, WITHOUT ROWID;
INSERT INTO tenant_seats (tenant_id, seats)
  SELECT tenant_id, count(*) FROM memberships WHERE status IN ('active', 'invited') GROUP BY tenant_id;

CREATE TRIGGER seats_on_insert AFTER INSERT ON memberships WHEN NEW.status IN ('active', 'invited') BEGIN
  INSERT INTO tenant_seats (tenant_id, seats) VALUES (NEW.tenant_id, 1)
    ON CONFLICT (tenant_id) DO UPDATE SET seats = seats + 1;
END;
CREATE TRIGGER seats_on_delete AFTER DELETE ON memberships WHEN OLD.status IN ('active', 'invited') BEGIN
  UPDATE tenant_seats SET seats = seats - 1 WHERE tenant_id = OLD.tenant_id;
END;
CREATE TRIGGER seats_on_update AFTER UPDATE OF status, tenant_id ON memberships BEGIN
  UPDATE tenant_seats SET seats = seats - 1
    WHERE tenant_id = OLD.tenant_id AND OLD.status IN ('active', 'invited');
  INSERT INTO tenant_seats (tenant_id, seats)
    SELECT NEW.tenant_id, 1 WHERE NEW.status IN ('active', 'invited')
    ON CONFLICT (tenant_id) DO UPDATE SET seats = seats + 1;
END;
`;
