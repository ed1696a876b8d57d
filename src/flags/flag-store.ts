import type { WriteScope } from "../store/revision-writer.js";

export const FLAG_KINDS = ["release", "experiment", "ops", "kill_switch", "permission"] as const;
export type FlagKind = (typeof FLAG_KINDS)[number];

/**
 * Rule types known to this version. An unknown rule in the store makes the
 * flag evaluate off: a rollout we cannot read is not a rollout we grant.
 */
export type FlagRule =
  | { rule: "plans"; params: { plans: string[] } }
  | { rule: "percentage"; params: { percentage: number } };

export interface Flag {
  key: string;
  kind: FlagKind;
  description: string;
  owner: string;
  risk: string;
  enabled: boolean;
  cleanupAt: number | null;
  rules: FlagRule[];
}

export interface FlagStore {
  all(): Flag[];
  putFlag(tx: WriteScope, flag: Flag): void;
}
