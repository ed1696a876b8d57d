// Migration 6: an approval stores the exact content it covers (canonical
// JSON), so the approver can read it and a write is compared with it byte for
// byte. Approvals written before this migration have no content and can no
// longer be spent: their 48-bit digests were too short to bind content.
export const schema006 = `
ALTER TABLE approvals ADD COLUMN content_json TEXT NOT NULL DEFAULT '';
`;
