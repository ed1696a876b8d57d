// Migration 9: the tamper-evident audit trail of issue 17 (ADR 66). Every
// decision_log and admin_audit row written from now on carries the SHA-256
// of the previous row's hash and its own contents (src/audit/audit-chain.ts),
// so `bulkhead audit verify` finds a changed, inserted, deleted or reordered
// record. Rows written before this migration keep a NULL hash: they are the
// chain's unverifiable prefix, and verify reports how many there are.
export const schema009 = `
ALTER TABLE decision_log ADD COLUMN chain_hash TEXT;
ALTER TABLE admin_audit ADD COLUMN chain_hash TEXT;
`;
