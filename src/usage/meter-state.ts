import type { DirectoryStore } from "../directory/directory-store.js";
import { usageWindow, type EffectiveLimit } from "../entitlements/entitlement-resolver.js";
import type { UsageStore } from "./usage-store.js";

export interface MeterState {
  limit: EffectiveLimit;
  window: { start: number; end: number };
  used: number;
  /** Units held by live reservations; they count against the limit. */
  reserved: number;
}

/** Current usage of one meter for one tenant. Seats are counted from memberships. */
export function readMeterState(
  parts: { directory: DirectoryStore; usage: UsageStore },
  tenantId: string,
  limit: EffectiveLimit,
  now: number,
): MeterState {
  if (limit.kind === "seats") {
    return { limit, window: usageWindow("none", now), used: parts.directory.countSeats(tenantId), reserved: 0 };
  }
  const window = usageWindow(limit.reset, now);
  return {
    limit,
    window,
    used: parts.usage.used(tenantId, limit.meter, window.start),
    reserved: parts.usage.reserved(tenantId, limit.meter, window.start, now),
  };
}

/** Units still available; Infinity when the meter has no hard limit. */
export function remaining(state: MeterState): number {
  return state.limit.hard === null ? Infinity : Math.max(0, state.limit.hard - state.used - state.reserved);
}
