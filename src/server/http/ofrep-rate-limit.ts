import { createHash } from "node:crypto";
import type { Clock } from "../../clock.js";
import type { KeyRateLimiter } from "../../identity/rate-limiter.js";

/** The OFREP routes' admission limit: a token bucket per caller token (ADR 51). */
export interface OfrepRateLimit {
  /** Requests per minute each caller token may make (the bucket also holds this many); 0 = no limit. */
  perMinute: number;
  limiter: KeyRateLimiter;
  clock: Clock;
  /** Whether caller tokens are configured; without them every caller shares one bucket. */
  tokensRequired: boolean;
}

/**
 * Seconds the caller must wait before its next OFREP request, or 0 when this
 * one may run (and has taken its token). Called only after the caller token
 * was verified, so an unknown token can never spend a real caller's bucket.
 * The bucket is keyed by a hash of the token, not the token itself. Without
 * configured tokens any header is accepted, so keying by it would let a
 * caller dodge the limit by changing it: they all share one bucket then.
 */
export function ofrepRetryAfterSeconds(limit: OfrepRateLimit, authorization: unknown): number {
  if (limit.perMinute === 0) return 0;
  const caller = limit.tokensRequired && typeof authorization === "string"
    ? `ofrep:${createHash("sha256").update(authorization).digest("base64url")}`
    : "ofrep:anonymous";
  const waitMs = limit.limiter.takeOrWait(caller, limit.perMinute, limit.clock.now());
  return waitMs === 0 ? 0 : Math.max(1, Math.ceil(waitMs / 1000));
}
