import type { WriteScope } from "../store/revision-writer.js";

export const FLAG_KINDS = ["release", "experiment", "ops", "kill_switch", "permission"] as const;
export type FlagKind = (typeof FLAG_KINDS)[number];

/**
 * How long a flag of each type is expected to live once fully rolled out
 * (days); past it, `bulkhead flags stale` names the flag. A kill switch and a
 * permission flag are meant to stay, so they have none.
 */
export const EXPECTED_LIFETIME_DAYS: Record<FlagKind, number | null> = {
  release: 30,
  experiment: 60,
  ops: 180,
  kill_switch: null,
  permission: null,
};

export const RISK_CLASSES = ["low", "medium", "high"] as const;
export type RiskClass = (typeof RISK_CLASSES)[number];

/** Bucketing algorithms this build can evaluate; the version is stored with each rule that buckets. */
export const BUCKETING_VERSIONS = [1] as const;

/** Whose id a bucket is drawn from: the tenant (default, one workspace sees one answer) or the actor. */
export type Stickiness = "tenant" | "actor";

/**
 * Rule types known to this version. An unknown rule in the store makes the
 * flag evaluate off: a rollout we cannot read is not a rollout we grant.
 * The evaluator applies them in RULE_ORDER whatever order they are stored in.
 */
export type FlagRule =
  | { rule: "tenants_deny"; params: { tenants: string[] } }
  | { rule: "tenants_allow"; params: { tenants: string[] } }
  | { rule: "entitlement"; params: { entitlement: string } }
  | { rule: "plans"; params: { plans: string[] } }
  | { rule: "tags"; params: { tags: string[] } }
  | { rule: "roles"; params: { roles: string[] } }
  | {
      rule: "percentage";
      params: { percentage: number; bucketing: number; stickiness?: Stickiness; group?: string };
    };

export type FlagRuleName = FlagRule["rule"];

/**
 * The fixed evaluation order (DESIGN.md section 8, docs/flags.md). The kill
 * switch and the environment come before every rule; they are flag fields.
 */
export const RULE_ORDER: readonly FlagRuleName[] = [
  "tenants_deny",
  "tenants_allow",
  "entitlement",
  "plans",
  "tags",
  "roles",
  "percentage",
];

/** A weighted variant of an experiment; chosen with Unleash's variant hashing. */
export interface FlagVariant {
  name: string;
  weight: number;
  payload?: string;
}

export interface FlagVariants {
  bucketing: number;
  stickiness: Stickiness;
  list: FlagVariant[];
}

export interface Flag {
  key: string;
  kind: FlagKind;
  description: string;
  owner: string;
  risk: RiskClass;
  /** False = off everywhere, before any rule (a flag switched off by its owner). */
  enabled: boolean;
  /** The global kill switch: when set, off everywhere, whatever else is configured. */
  killed: boolean;
  /** Environments the flag is on in; empty = every environment. */
  environments: string[];
  createdAt: number;
  cleanupAt: number | null;
  /** Since when it has been on for everyone it targets (no percentage below 100); null = not fully on. */
  fullyOnSince: number | null;
  /**
   * When this process (or another on the same file) last evaluated it, as of
   * the last flush of FlagUsage; null = never since tracking began. Local
   * telemetry, not replicated (ADR 52).
   */
  lastEvaluatedAt: number | null;
  rules: FlagRule[];
  variants: FlagVariants | null;
}

/** What the seed and admin writes supply; the store fills the rest. */
export type FlagInput = Omit<Flag, "createdAt" | "fullyOnSince" | "lastEvaluatedAt" | "killed" | "environments" | "variants"> &
  Partial<Pick<Flag, "killed" | "environments" | "variants">>;

export interface FlagStore {
  all(): Flag[];
  get(key: string): Flag | null;
  putFlag(tx: WriteScope, flag: FlagInput): void;
  deleteFlag(tx: WriteScope, key: string): boolean;
  setKilled(tx: WriteScope, key: string, killed: boolean): boolean;
  /**
   * Moves each named flag's last-evaluated time forward to the given one (never
   * back), in one statement. Deliberately not a WriteScope write: it is
   * telemetry no decision reads, so it bumps no revision and is no command
   * (ADR 52). Keys that no longer exist are ignored.
   */
  recordEvaluated(lastSeen: ReadonlyMap<string, number>): void;
}
