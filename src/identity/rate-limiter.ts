import { LRUCache } from "lru-cache";

/**
 * Token bucket per API key, in this process: `perMinute` tokens of capacity,
 * refilled continuously. With several sidecar processes each has its own
 * buckets, so the effective limit is per process.
 */
export class KeyRateLimiter {
  private readonly buckets = new LRUCache<string, { tokens: number; at: number }>({ max: 100_000 });

  take(keyId: string, perMinute: number, now: number): boolean {
    const bucket = this.buckets.get(keyId) ?? { tokens: perMinute, at: now };
    const refilled = Math.min(perMinute, bucket.tokens + ((now - bucket.at) / 60_000) * perMinute);
    if (refilled < 1) {
      this.buckets.set(keyId, { tokens: refilled, at: now });
      return false;
    }
    this.buckets.set(keyId, { tokens: refilled - 1, at: now });
    return true;
  }
}
