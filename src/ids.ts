import { randomBytes } from "node:crypto";
import type { Clock } from "./clock.js";

/** Ids are injected so tests can pin them. */
export interface IdGenerator {
  /** A new decision id: `dec_` + a ULID, so ids sort by creation time. */
  decisionId(): string;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** ULID (48-bit time + 80 random bits, Crockford base32). */
export function ulid(epochMs: number, random: Uint8Array = randomBytes(10)): string {
  let time = "";
  let t = epochMs;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let bits = 0;
  let value = 0;
  let rand = "";
  for (const byte of random) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rand += CROCKFORD[(value >> bits) & 31];
    }
  }
  return time + rand.slice(0, 16);
}

export function ulidGenerator(clock: Clock): IdGenerator {
  return { decisionId: () => `dec_${ulid(clock.now())}` };
}
