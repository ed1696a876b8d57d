// Migration 8: the flag model of issue 16. A kill switch separate from
// `enabled` (SetKillSwitch flips only it, so lifting it restores exactly what
// was configured), the environments a flag is on in, weighted variants, and
// the last time it was evaluated (kept coarsely, for the stale report).
//
// Percentage rules written before now bucketed with v1 without saying so; the
// version is written into them here, so a later default can never change a
// stored rollout silently.
export const schema008 = `
ALTER TABLE flags ADD COLUMN killed INTEGER NOT NULL DEFAULT 0 CHECK (killed IN (0, 1));
ALTER TABLE flags ADD COLUMN environments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE flags ADD COLUMN variants TEXT;
ALTER TABLE flags ADD COLUMN fully_on_since INTEGER;
ALTER TABLE flags ADD COLUMN last_evaluated_at INTEGER;

UPDATE flag_rules SET params = json_set(params, '$.bucketing', 1)
  WHERE rule = 'percentage' AND json_extract(params, '$.bucketing') IS NULL;
`;
