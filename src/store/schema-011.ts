// Migration 11: break-glass (issue 20, ADR 54). A break-glass grant is an
// approval its own requester opened alone, in an emergency, for one exact
// change: it is marked as such, carries the free-text justification beside
// the reason code, and remembers when its expiry was recorded in the trail
// (so `break_glass.expired` is written once per grant, on every sidecar).
export const schema011 = `
ALTER TABLE approvals ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0 CHECK (break_glass IN (0, 1));
ALTER TABLE approvals ADD COLUMN justification TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN expired_at INTEGER;
CREATE INDEX approvals_break_glass ON approvals (break_glass, created_at);
`;
