// Migration 10: retention of the audit trail (issue 17, ADR 57). Pruning
// deletes a prefix of a chain; the anchor remembers the last deleted row
// (its rowid and hash) and how many hashed rows were deleted in all, so
// `bulkhead audit verify` starts the chain from the anchor instead of from
// nothing. It is written in the same transaction as the delete: a prefix
// pruned without it, or an anchor that does not lead to the first kept row,
// is reported as tampering.
export const schema010 = `
CREATE TABLE audit_anchor (
  chain     TEXT PRIMARY KEY,
  row_id    INTEGER NOT NULL,
  hash      TEXT NOT NULL,
  records   INTEGER NOT NULL,
  pruned_at INTEGER NOT NULL
) STRICT;
`;
