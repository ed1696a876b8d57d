import { murmur3x86_32 } from "./murmur3.js";

/**
 * Versioned bucketing. A rule stores the version it was written with, so a
 * new algorithm arrives as a new number and never moves an existing tenant
 * between buckets. Version 1 is Unleash's, byte for byte on ASCII keys:
 * strategies use murmur3 x86 32 of "<group>:<key>" with seed 0, % 100 + 1;
 * variants the same string with seed 86028157, % total weight + 1.
 *
 * Non-ASCII keys: v1 hashes the key's UTF-8 bytes, the bytes the key has on
 * the wire and in the store. Unleash's Node SDK (murmurhash3js) hashes the
 * low byte of each UTF-16 unit instead, so for a key with a non-ASCII
 * character a Node SDK may bucket it differently; ids Bulkhead issues are
 * ASCII, where the two agree (ADR in docs/decisions.md).
 */
const UNLEASH_VARIANT_SEED = 86028157;

/** Bucket 1..100, or null for a version this build does not know (the rule then fails closed). */
export function percentageBucket(version: number, group: string, key: string): number | null {
  if (version !== 1) return null;
  return (murmur3x86_32(`${group}:${key}`, 0) % 100) + 1;
}

/** Variant target 1..totalWeight, or null for an unknown version. */
export function variantTarget(version: number, group: string, key: string, totalWeight: number): number | null {
  if (version !== 1 || totalWeight <= 0) return null;
  return (murmur3x86_32(`${group}:${key}`, UNLEASH_VARIANT_SEED) % totalWeight) + 1;
}
