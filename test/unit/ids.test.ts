import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ulid, ulidGenerator } from "../../src/ids.js";
import { testClock } from "../support/test-time.js";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** The ULID encoding written out the slow way: 48 bits of time, then 80 random bits, 5 bits a character. */
function reference(epochMs: number, random: Uint8Array): string {
  let bits = BigInt(epochMs);
  for (const byte of random) bits = (bits << 8n) | BigInt(byte);
  let out = "";
  for (let i = 0; i < 26; i++) {
    out = CROCKFORD[Number(bits & 31n)] + out;
    bits >>= 5n;
  }
  return out;
}

describe("ulid", () => {
  it("encodes time and random bits as the ULID spec does", () => {
    expect(ulid(0, new Uint8Array(10))).toBe("0".repeat(26));
    expect(ulid(2 ** 48 - 1, new Uint8Array(10).fill(255))).toBe(`7${"Z".repeat(25)}`);
    for (let i = 0; i < 2000; i++) {
      const at = Math.floor(Math.random() * 2 ** 48);
      const random = randomBytes(10);
      expect(ulid(at, random)).toBe(reference(at, random));
    }
  });

  it("gives decision ids that differ and sort by time", () => {
    const clock = testClock();
    const ids = ulidGenerator(clock);
    const seen: string[] = [];
    for (let i = 0; i < 1000; i++) {
      if (i % 100 === 0) clock.advance(1);
      seen.push(ids.decisionId());
    }
    expect(new Set(seen).size).toBe(1000);
    expect(seen.every((id) => /^dec_[0-9A-HJKMNP-TV-Z]{26}$/.test(id))).toBe(true);
    const firsts = seen.filter((_, i) => i % 100 === 0);
    expect([...firsts].sort()).toEqual(firsts);
  });
});
