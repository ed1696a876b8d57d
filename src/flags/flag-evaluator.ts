import { percentageBucket, variantTarget } from "./bucketing.js";
import { RULE_ORDER, type Flag, type FlagRule, type FlagVariant, type Stickiness } from "./flag-store.js";

/**
 * What a flag rule may look at. An empty `tenantId` or a missing `actorId`
 * is a missing bucket key: a rollout that needs it evaluates off.
 * A tenant unknown to the store has no plan, entitlements or tags.
 */
export interface FlagSubject {
  tenantId: string;
  actorId?: string | undefined;
  /** The actor's role in the tenant; undefined when no member is named. */
  role?: string | undefined;
  planCode: string | null;
  entitlements: readonly string[];
  tags: readonly string[];
  /** The environment this sidecar serves (BULKHEAD_ENVIRONMENT). */
  environment: string;
}

/** OpenFeature's resolution reasons, the subset a Bulkhead flag can produce. */
export type FlagReason = "TARGETING_MATCH" | "SPLIT" | "DISABLED" | "DEFAULT" | "ERROR";
export type FlagErrorCode = "TARGETING_KEY_MISSING" | "GENERAL";

export interface FlagDetails {
  key: string;
  value: boolean;
  reason: FlagReason;
  variant?: string;
  payload?: string;
  errorCode?: FlagErrorCode;
  errorMessage?: string;
}

/** On only when every rule, in RULE_ORDER, lets it through. */
export function evaluateFlag(flag: Flag, subject: FlagSubject): boolean {
  return evaluateFlagDetails(flag, subject).value;
}

export function evaluateFlags(flags: Flag[], subject: FlagSubject): Record<string, boolean> {
  const values: Record<string, boolean> = {};
  for (const flag of flags) values[flag.key] = evaluateFlag(flag, subject);
  return values;
}

const off = (key: string, reason: FlagReason, errorCode?: FlagErrorCode, errorMessage?: string): FlagDetails => ({
  key,
  value: false,
  reason,
  ...(errorCode && { errorCode }),
  ...(errorMessage && { errorMessage }),
});

/**
 * The fixed order: kill switch and enabled; environment; tenant deny list;
 * tenant allow list; required entitlement; allowed plans; tenant tags; actor
 * roles; percentage. An allow-listed tenant skips the tags and the
 * percentage (the targeting) but never the entitlement, plans or roles (the
 * rights): an allow list cannot hand a free tenant what only pro buys.
 * Anything this build cannot read (unknown rule, unknown bucketing version)
 * is an ERROR with value off.
 */
export function evaluateFlagDetails(flag: Flag, subject: FlagSubject): FlagDetails {
  const key = flag.key;
  if (flag.killed || !flag.enabled) return off(key, "DISABLED");
  if (flag.environments.length > 0 && !flag.environments.includes(subject.environment)) return off(key, "DEFAULT");
  const rules = orderedRules(flag.rules);
  if (!rules) return off(key, "ERROR", "GENERAL", `flag ${key} has a rule this build does not know`);
  let allowListed = false;
  let split = false;
  for (const rule of rules) {
    switch (rule.rule) {
      case "tenants_deny":
        if (rule.params.tenants.includes(subject.tenantId)) return off(key, "DEFAULT");
        break;
      case "tenants_allow":
        if (subject.tenantId !== "" && rule.params.tenants.includes(subject.tenantId)) allowListed = true;
        break;
      case "entitlement":
        if (!subject.entitlements.includes(rule.params.entitlement)) return off(key, "DEFAULT");
        break;
      case "plans":
        if (subject.planCode === null || !rule.params.plans.includes(subject.planCode)) return off(key, "DEFAULT");
        break;
      case "tags":
        if (!allowListed && !rule.params.tags.some((t) => subject.tags.includes(t))) return off(key, "DEFAULT");
        break;
      case "roles":
        if (subject.role === undefined || !rule.params.roles.includes(subject.role)) return off(key, "DEFAULT");
        break;
      case "percentage": {
        if (allowListed) break;
        const { percentage, bucketing, stickiness = "tenant", group = key } = rule.params;
        const bucketKey = stickyValue(stickiness, subject);
        if (bucketKey === undefined) return off(key, "ERROR", "TARGETING_KEY_MISSING", `flag ${key} buckets by ${stickiness}, which is missing`);
        const bucket = percentageBucket(bucketing, group, bucketKey);
        if (bucket === null) return off(key, "ERROR", "GENERAL", `flag ${key} uses bucketing v${String(bucketing)}, unknown to this build`);
        if (bucket > percentage) return off(key, "DEFAULT");
        if (percentage < 100) split = true;
        break;
      }
    }
  }
  const on: FlagDetails = { key, value: true, reason: split ? "SPLIT" : "TARGETING_MATCH" };
  return withVariant(flag, subject, on);
}

function withVariant(flag: Flag, subject: FlagSubject, on: FlagDetails): FlagDetails {
  const variants = flag.variants;
  if (!variants) return on;
  const total = variants.list.reduce((sum, v) => sum + v.weight, 0);
  if (total <= 0) return on;
  const bucketKey = stickyValue(variants.stickiness, subject);
  if (bucketKey === undefined) return off(flag.key, "ERROR", "TARGETING_KEY_MISSING", `flag ${flag.key} picks variants by ${variants.stickiness}, which is missing`);
  const target = variantTarget(variants.bucketing, flag.key, bucketKey, total);
  if (target === null) return off(flag.key, "ERROR", "GENERAL", `flag ${flag.key} uses variant bucketing v${String(variants.bucketing)}, unknown to this build`);
  const chosen = pickVariant(variants.list, target);
  return { ...on, reason: "SPLIT", variant: chosen.name, ...(chosen.payload !== undefined && { payload: chosen.payload }) };
}

/** Unleash's walk: the first variant whose running weight reaches the target. */
function pickVariant(list: FlagVariant[], target: number): FlagVariant {
  let counter = 0;
  for (const v of list) {
    if (v.weight === 0) continue;
    counter += v.weight;
    if (counter >= target) return v;
  }
  return list[list.length - 1]!;
}

function stickyValue(stickiness: Stickiness, subject: FlagSubject): string | undefined {
  const value = stickiness === "actor" ? subject.actorId : subject.tenantId;
  return value ? value : undefined;
}

/** Rules sorted into RULE_ORDER (stable), or null when one is unknown. */
function orderedRules(rules: FlagRule[]): FlagRule[] | null {
  const rank = (r: FlagRule) => RULE_ORDER.indexOf(r.rule);
  if (rules.some((r) => rank(r) < 0)) return null;
  return [...rules].sort((a, b) => rank(a) - rank(b));
}

/** On for everyone it targets: enabled, not killed, no percentage below 100 (the stale report's test). */
export function isFullyOn(flag: Pick<Flag, "enabled" | "killed" | "rules">): boolean {
  return (
    flag.enabled &&
    !flag.killed &&
    flag.rules.every((r) => r.rule !== "percentage" || (r.params as { percentage: number }).percentage >= 100)
  );
}
