import { LRUCache } from "lru-cache";

/**
 * Token bucket per key (an API key's id, an OFREP caller), in this process:
 * `perMinute` tokens of capacity, refilled continuously. With several
 * sidecar processes each has its own buckets, so the effective limit is per
 * process.
 */
export class KeyRateLimiter {
  private readonly buckets = new LRUCache<string, { tokens: number; at: number }>({ max: 100_000 });

  take(keyId: string, perMinute: number, now: number): boolean {
    return this.takeOrWait(keyId, perMinute, now) === 0;
  }

  /**
   * Takes a token and answers 0, or takes none and answers how many ms until
   * one is there (what a 429's Retry-After tells the caller).
   */
  takeOrWait(keyId: string, perMinute: number, now: number): number {
    const bucket = this.buckets.get(keyId) ?? { tokens: perMinute, at: now };
    // max(0, ...): a clock that stepped back must not drain the bucket.
    const refilled = Math.min(perMinute, bucket.tokens + (Math.max(0, now - bucket.at) / 60_000) * perMinute);
    if (refilled < 1) {
      this.buckets.set(keyId, { tokens: refilled, at: now });
      // - 1e-6: float noise (0.95 tokens is 1000.0000000000009 ms short) must not add a whole ms.
      return Math.max(1, Math.ceil(((1 - refilled) * 60_000) / perMinute - 1e-6));
    }
    this.buckets.set(keyId, { tokens: refilled - 1, at: now });
    return 0;
  }
}
