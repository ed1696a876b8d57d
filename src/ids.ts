import { randomBytes, randomFillSync } from "node:crypto";
import type { Clock } from "./clock.js";

/** Ids are injected so tests can pin them. */
export interface IdGenerator {
  /** A new decision id: `dec_` + a ULID, so ids sort by creation time. */
  decisionId(): string;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

const CODES = Array.from(CROCKFORD, (c) => c.charCodeAt(0));
/** One id's character codes, reused: ulidAt() is on every decision's path. */
const chars = new Array<number>(26);

/** ULID (48-bit time + 80 random bits, Crockford base32). */
export function ulid(epochMs: number, random: Uint8Array = randomBytes(10)): string {
  return ulidAt(epochMs, random, 0);
}

/**
 * ulid() from the 10 bytes of `bytes` at `offset`, without a view of them or
 * a string per character: the same id, in half the time (issue 19).
 */
function ulidAt(epochMs: number, bytes: Uint8Array, offset: number): string {
  let t = epochMs;
  for (let i = 9; i >= 0; i--) {
    chars[i] = CODES[t % 32]!;
    t = Math.floor(t / 32);
  }
  // The 80 random bits as two 40-bit halves (8 characters each), read from their low end.
  for (let half = 0; half < 2; half++) {
    const o = offset + half * 5;
    let high = bytes[o]!;
    let low = ((bytes[o + 1]! << 24) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 8) | bytes[o + 4]!) >>> 0;
    for (let i = 17 + half * 8; i >= 10 + half * 8; i--) {
      chars[i] = CODES[low & 31]!;
      low = (low >>> 5) | ((high & 31) << 27);
      high >>>= 5;
    }
  }
  return String.fromCharCode(...chars);
}

/**
 * Random bytes drawn 4 KiB at a time: one randomFillSync per 409 ids instead
 * of one randomBytes call (and Buffer) per decision, which profiling showed
 * at 2-6% of a Check. The bytes are still from the CSPRNG and never reused.
 */
function ulidPool(size = 4096): (epochMs: number) => string {
  const pool = Buffer.alloc(size);
  let offset = size;
  return (epochMs) => {
    if (offset + 10 > size) {
      randomFillSync(pool);
      offset = 0;
    }
    offset += 10;
    return ulidAt(epochMs, pool, offset - 10);
  };
}

export function ulidGenerator(clock: Clock): IdGenerator {
  const next = ulidPool();
  return { decisionId: () => `dec_${next(clock.now())}` };
}
