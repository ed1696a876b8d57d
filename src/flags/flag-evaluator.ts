import type { Flag, FlagRule } from "./flag-store.js";
import { rolloutBucket } from "./murmur3.js";

/** What a flag rule may look at. Bucketing is by tenant, so a whole workspace sees the same thing. */
export interface FlagSubject {
  tenantId: string;
  planCode: string;
}

/** On only when the flag is enabled and every rule matches. */
export function evaluateFlag(flag: Flag, subject: FlagSubject): boolean {
  return flag.enabled && flag.rules.every((rule) => ruleMatches(flag.key, rule, subject));
}

export function evaluateFlags(flags: Flag[], subject: FlagSubject): Record<string, boolean> {
  const values: Record<string, boolean> = {};
  for (const flag of flags) values[flag.key] = evaluateFlag(flag, subject);
  return values;
}

function ruleMatches(flagKey: string, rule: FlagRule, subject: FlagSubject): boolean {
  switch (rule.rule) {
    case "plans":
      return rule.params.plans.includes(subject.planCode);
    case "percentage":
      return rolloutBucket(flagKey, subject.tenantId) <= rule.params.percentage;
    default:
      return false;
  }
}
