import { describe, expect, it } from "vitest";
import { percentageBucket } from "../../src/flags/bucketing.js";
import { murmur3x86_32 } from "../../src/flags/murmur3.js";

const rolloutBucket = (group: string, key: string) => percentageBucket(1, group, key);

describe("murmur3 x86 32", () => {
  // Reference values of MurmurHash3_x86_32 (seed 0 unless given).
  it.each([
    ["", 0, 0],
    ["", 1, 0x514e28b7],
    ["hello", 0, 0x248bfa47],
    ["The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723],
    ["abc", 0, 0xb3dd93fa],
    ["abcd", 0, 0x43ed676a],
  ])("hashes %j with seed %i", (key, seed, expected) => {
    expect(murmur3x86_32(key, seed)).toBe(expected);
  });

  it("buckets like Unleash's normalizedValue(id, groupId)", () => {
    // From the Unleash client specification: normalizedValue('123', 'gr1') === 73
    // and normalizedValue('999', 'groupX') === 25.
    expect(rolloutBucket("gr1", "123")).toBe(73);
    expect(rolloutBucket("groupX", "999")).toBe(25);
  });

  it("keeps buckets within 1..100", () => {
    for (let i = 0; i < 1000; i++) {
      const bucket = rolloutBucket("flag", `ten_${i}`);
      expect(bucket).toBeGreaterThanOrEqual(1);
      expect(bucket).toBeLessThanOrEqual(100);
    }
  });
});
