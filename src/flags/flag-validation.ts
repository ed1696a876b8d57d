import { invalidArgument } from "../errors.js";
import { checkId, requireId } from "../validation.js";
import {
  BUCKETING_VERSIONS, EXPECTED_LIFETIME_DAYS, FLAG_KINDS, RISK_CLASSES, RULE_ORDER,
  type FlagInput, type FlagKind, type FlagRule, type FlagVariants, type RiskClass, type Stickiness,
} from "./flag-store.js";

const ENVIRONMENT = /^[a-z][a-z0-9_-]{0,63}$/;
const MAX_LIST = 1000;
const MAX_VARIANTS = 20;

type Raw = Record<string, unknown>;

/**
 * A flag as PutFlag takes it (JSON), checked field by field so an error
 * names its field. A flag meant to be removed one day (release, experiment,
 * ops) must say when: a cleanup date is the plan that keeps it from
 * becoming permanent architecture.
 */
export function validateFlagJson(json: string): FlagInput {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw invalidArgument("flag_json", "is not JSON");
  }
  if (!isObject(raw)) throw invalidArgument("flag_json", "must be an object");
  const key = requireId(str(raw.key, "flag.key"), "flag.key");
  const kind = oneOf(raw.kind, FLAG_KINDS, "flag.kind") as FlagKind;
  const owner = requireId(str(raw.owner, "flag.owner"), "flag.owner");
  const description = str(raw.description ?? "", "flag.description");
  if (description.length > 500) throw invalidArgument("flag.description", "must be at most 500 characters");
  const risk = oneOf(raw.risk ?? "low", RISK_CLASSES, "flag.risk") as RiskClass;
  const enabled = raw.enabled === undefined ? true : bool(raw.enabled, "flag.enabled");
  const environments = list(raw.environments ?? [], "flag.environments").map((e, i) => {
    const name = str(e, `flag.environments[${i}]`);
    if (!ENVIRONMENT.test(name)) throw invalidArgument(`flag.environments[${i}]`, "must be lower-case letters, digits, '-' or '_'");
    return name;
  });
  const cleanupAt = raw.cleanupAt === undefined || raw.cleanupAt === null ? null : date(raw.cleanupAt, "flag.cleanupAt");
  if (cleanupAt === null && EXPECTED_LIFETIME_DAYS[kind] !== null) {
    throw invalidArgument("flag.cleanupAt", `is required for a ${kind} flag: say when it is to be removed`);
  }
  const rules = list(raw.rules ?? [], "flag.rules").map((r, i) => validateRule(r, `flag.rules[${i}]`));
  const variants = raw.variants === undefined || raw.variants === null ? null : validateVariants(raw.variants, "flag.variants");
  return { key, kind, description, owner, risk, enabled, environments, cleanupAt, rules, variants };
}

function validateRule(raw: unknown, field: string): FlagRule {
  if (!isObject(raw)) throw invalidArgument(field, "must be an object with rule and params");
  const rule = oneOf(raw.rule, RULE_ORDER, `${field}.rule`) as FlagRule["rule"];
  const params = isObject(raw.params) ? raw.params : {};
  const p = `${field}.params`;
  switch (rule) {
    case "tenants_deny":
    case "tenants_allow":
      return { rule, params: { tenants: ids(params.tenants, `${p}.tenants`) } };
    case "entitlement":
      return { rule, params: { entitlement: requireId(str(params.entitlement, `${p}.entitlement`), `${p}.entitlement`) } };
    case "plans":
      return { rule, params: { plans: ids(params.plans, `${p}.plans`) } };
    case "tags":
      return { rule, params: { tags: ids(params.tags, `${p}.tags`) } };
    case "roles":
      return { rule, params: { roles: ids(params.roles, `${p}.roles`) } };
    case "percentage": {
      const percentage = params.percentage;
      if (typeof percentage !== "number" || !Number.isInteger(percentage) || percentage < 0 || percentage > 100) {
        throw invalidArgument(`${p}.percentage`, "must be a whole number from 0 to 100");
      }
      const group = params.group === undefined ? undefined : requireId(str(params.group, `${p}.group`), `${p}.group`);
      return {
        rule,
        params: {
          percentage,
          bucketing: bucketing(params.bucketing, `${p}.bucketing`),
          stickiness: stickiness(params.stickiness, `${p}.stickiness`),
          ...(group !== undefined && { group }),
        },
      };
    }
  }
}

function validateVariants(raw: unknown, field: string): FlagVariants {
  if (!isObject(raw)) throw invalidArgument(field, "must be an object with list");
  const entries = list(raw.list, `${field}.list`);
  if (entries.length === 0 || entries.length > MAX_VARIANTS) throw invalidArgument(`${field}.list`, `must hold 1 to ${MAX_VARIANTS} variants`);
  const variantList = entries.map((v, i) => {
    const f = `${field}.list[${i}]`;
    if (!isObject(v)) throw invalidArgument(f, "must be an object with name and weight");
    const name = requireId(str(v.name, `${f}.name`), `${f}.name`);
    if (typeof v.weight !== "number" || !Number.isInteger(v.weight) || v.weight < 0 || v.weight > 10_000) {
      throw invalidArgument(`${f}.weight`, "must be a whole number from 0 to 10000");
    }
    const payload = v.payload === undefined ? undefined : str(v.payload, `${f}.payload`);
    return { name, weight: v.weight, ...(payload !== undefined && { payload }) };
  });
  if (variantList.every((v) => v.weight === 0)) throw invalidArgument(`${field}.list`, "needs a variant with a weight above 0");
  return { bucketing: bucketing(raw.bucketing, `${field}.bucketing`), stickiness: stickiness(raw.stickiness, `${field}.stickiness`), list: variantList };
}

/** Absent = v1, written into the rule so the stored flag names its algorithm. */
function bucketing(raw: unknown, field: string): number {
  if (raw === undefined) return 1;
  if (!(BUCKETING_VERSIONS as readonly unknown[]).includes(raw)) throw invalidArgument(field, `must be one of ${BUCKETING_VERSIONS.join(", ")}`);
  return raw as number;
}

function stickiness(raw: unknown, field: string): Stickiness {
  return (raw === undefined ? "tenant" : oneOf(raw, ["tenant", "actor"], field)) as Stickiness;
}

const isObject = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

function str(v: unknown, field: string): string {
  if (typeof v !== "string") throw invalidArgument(field, "must be a string");
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw invalidArgument(field, "must be true or false");
  return v;
}

function list(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw invalidArgument(field, "must be a list");
  if (v.length > MAX_LIST) throw invalidArgument(field, `must hold at most ${MAX_LIST} entries`);
  return v;
}

function ids(v: unknown, field: string): string[] {
  return list(v ?? [], field).map((x, i) => {
    const id = str(x, `${field}[${i}]`);
    checkId(id, `${field}[${i}]`);
    return id;
  });
}

function oneOf(v: unknown, allowed: readonly string[], field: string): string {
  if (typeof v !== "string" || !allowed.includes(v)) throw invalidArgument(field, `must be one of ${allowed.join(", ")}`);
  return v;
}

/** An ISO 8601 date or date-time, stored as epoch ms. */
function date(v: unknown, field: string): number {
  const text = str(v, field);
  const ms = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms)) throw invalidArgument(field, "must be an ISO 8601 date such as 2027-06-30");
  return ms;
}
