// Pure helpers of bench/cluster.mjs (unit-tested in test/unit/bench-cluster-stats.test.ts).
import { percentile } from "../machine.mjs";

/**
 * The value of an unlabelled series in a Prometheus text exposition
 * (a sidecar's /metrics), or undefined when it has none.
 */
export function metricValue(text, name) {
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) (\S+)$/.exec(line);
    if (m && m[1] === name) return Number(m[2]);
  }
  return undefined;
}

/** p50, p99 and max of unsorted numbers (0s for none). */
export function spread(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1] : 0, n: sorted.length };
}

/**
 * The race's exactness: per tenant, the units the callers were told were
 * allowed against the counter each sidecar reports. Exact when every
 * sidecar's counter equals the allowed sum and no sum exceeds the limit.
 *   allowed: { tenant: units }, used: [{ tenant: units }, ...] one per sidecar
 */
export function exactness({ allowed, used, limit }) {
  const rows = Object.keys(allowed).sort().map((tenant) => {
    const counters = used.map((perSidecar) => perSidecar[tenant]);
    return { tenant, allowed: allowed[tenant], counters, exact: allowed[tenant] <= limit && counters.every((c) => c === allowed[tenant]) };
  });
  return { rows, exact: rows.length > 0 && rows.every((r) => r.exact) };
}
