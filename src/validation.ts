import { invalidArgument } from "./errors.js";

/** Shared field rules for every request a transport hands to the domain. */
export const FIELD_LIMITS = {
  idLength: 128,
  maxAmount: 1_000_000_000,
} as const;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:@-]*$/;
const TOKEN = /^[\x21-\x7e]*$/; // printable ASCII without spaces: request ids, idempotency keys

export function checkPattern(value: string, pattern: RegExp, field: string, rule: string): void {
  if (value.length > FIELD_LIMITS.idLength) throw invalidArgument(field, `must be at most ${FIELD_LIMITS.idLength} characters`);
  if (!pattern.test(value)) throw invalidArgument(field, rule);
}

/** An identifier (tenant, actor, resource, meter...). */
export function checkId(value: string, field: string): void {
  checkPattern(value, ID, field, "must start with a letter or digit and use only letters, digits and _.:@-");
}

export function requireId(value: string | undefined, field: string): string {
  if (!value) throw invalidArgument(field, "is required");
  checkId(value, field);
  return value;
}

export function checkToken(value: string, field: string): void {
  checkPattern(value, TOKEN, field, "must be printable ASCII without spaces");
}

export function requireToken(value: string | undefined, field: string): string {
  if (!value) throw invalidArgument(field, "is required");
  checkToken(value, field);
  return value;
}

/** A positive whole number of units, bounded so sums cannot overflow. */
export function requireAmount(value: number | undefined, field: string, min = 1): number {
  const amount = value ?? 0;
  if (!Number.isSafeInteger(amount) || amount < min || amount > FIELD_LIMITS.maxAmount) {
    throw invalidArgument(field, `must be a whole number from ${min} to ${FIELD_LIMITS.maxAmount}`);
  }
  return amount;
}
