import { validateFlagJson } from "../flags/flag-validation.js";
import { RULE_ORDER, type Flag, type FlagInput, type FlagRule, type FlagRuleName } from "../flags/flag-store.js";

/** The parts of a flag's rollout the console edits; every other rule and field stays as stored. */
export interface RolloutFields {
  /** "" = no percentage rule (everyone the other rules admit). */
  percentage: string;
  tenantsAllow: string[];
  tenantsDeny: string[];
  plans: string[];
}

const EDITED: readonly FlagRuleName[] = ["percentage", "tenants_allow", "tenants_deny", "plans"];

export const FORM_NAMES = { percentage: "percentage", tenantsAllow: "tenants_allow", tenantsDeny: "tenants_deny", plans: "plans" } as const;

type ParamsOf<N extends FlagRuleName> = Extract<FlagRule, { rule: N }>["params"];

function params<N extends FlagRuleName>(rules: readonly FlagRule[], name: N): ParamsOf<N> | undefined {
  return rules.find((r) => r.rule === name)?.params as ParamsOf<N> | undefined;
}

/** What a flag's (or an approval's) rules say about the edited parts. */
export function rolloutOf(rules: readonly FlagRule[]): RolloutFields {
  const percentage = params(rules, "percentage")?.percentage;
  return {
    percentage: percentage === undefined ? "" : String(percentage),
    tenantsAllow: params(rules, "tenants_allow")?.tenants ?? [],
    tenantsDeny: params(rules, "tenants_deny")?.tenants ?? [],
    plans: params(rules, "plans")?.plans ?? [],
  };
}

/** The rollout fields of a posted form: ids separated by spaces, commas or new lines. */
export function rolloutFromForm(form: Record<string, string>): RolloutFields {
  const ids = (name: string) => (form[name] ?? "").split(/[\s,]+/).filter((id) => id !== "");
  return {
    percentage: (form[FORM_NAMES.percentage] ?? "").trim(),
    tenantsAllow: ids(FORM_NAMES.tenantsAllow),
    tenantsDeny: ids(FORM_NAMES.tenantsDeny),
    plans: ids(FORM_NAMES.plans),
  };
}

/**
 * The flag as PutFlag will store it: the stored flag with the edited rules
 * replaced (an empty list or percentage drops its rule), checked by the same
 * validation PutFlag runs. Rules come out in RULE_ORDER (the order they are
 * evaluated in anyway), so the same form on the same flag always gives the
 * same content, which is what an approval covers byte for byte.
 */
export function nextFlag(current: Flag, fields: RolloutFields): FlagInput {
  const kept = current.rules.filter((r) => !EDITED.includes(r.rule));
  const pct = params(current.rules, "percentage");
  const edited: Record<string, unknown> = {
    tenants_deny: fields.tenantsDeny.length > 0 ? { tenants: fields.tenantsDeny } : null,
    tenants_allow: fields.tenantsAllow.length > 0 ? { tenants: fields.tenantsAllow } : null,
    plans: fields.plans.length > 0 ? { plans: fields.plans } : null,
    // The stored bucketing, stickiness and group stay: only the share changes, so buckets already in stay in.
    percentage: fields.percentage === "" ? null : { ...pct, percentage: /^\d+$/.test(fields.percentage) ? Number(fields.percentage) : fields.percentage },
  };
  const rules = RULE_ORDER.flatMap((name) =>
    EDITED.includes(name) ? (edited[name] ? [{ rule: name, params: edited[name] }] : []) : kept.filter((r) => r.rule === name),
  );
  const { key, kind, description, owner, risk, enabled, environments, variants } = current;
  const cleanupAt = current.cleanupAt === null ? null : new Date(current.cleanupAt).toISOString();
  return validateFlagJson(JSON.stringify({ key, kind, description, owner, risk, enabled, environments, cleanupAt, rules, variants }));
}

/** One line per rule, for the flag list and the approval queue. */
export function describeRules(rules: readonly FlagRule[]): string[] {
  return rules.map((r) => {
    const p = r.params as Record<string, unknown>;
    if (r.rule === "percentage") return `percentage: ${String(p.percentage)}% (bucketing v${String(p.bucketing)}, by ${String(p.stickiness ?? "tenant")})`;
    const values = Object.values(p).flatMap((v) => (Array.isArray(v) ? v : [v]));
    return `${r.rule}: ${values.join(", ")}`;
  });
}
