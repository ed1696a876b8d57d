import { describe, expect, it } from "vitest";
import { exactness, metricValue, spread } from "../../bench/lib/cluster-stats.mjs";

// bench/cluster.mjs prints "exact" for the three-sidecar Consume race from
// these; a helper that said yes to a counter off by one would hide the bug
// the race exists to show.
describe("bench cluster stats", () => {
  it("reads an unlabelled series and not one whose name only starts the same", () => {
    const text = [
      "# HELP bulkhead_replication_lag_entries entries not applied yet",
      "# TYPE bulkhead_replication_lag_entries gauge",
      "bulkhead_replication_lag_entries_total 9",
      'bulkhead_replication_lag_entries{node="x"} 8',
      "bulkhead_replication_lag_entries 3",
    ].join("\n");
    expect(metricValue(text, "bulkhead_replication_lag_entries")).toBe(3);
    expect(metricValue(text, "bulkhead_replication_applied_sequence")).toBeUndefined();
  });

  it("is exact only when every sidecar's counter equals the allowed units and none passes the limit", () => {
    const allowed = { ten_a: 100, ten_b: 100 };
    expect(exactness({ allowed, used: [{ ten_a: 100, ten_b: 100 }, { ten_a: 100, ten_b: 100 }], limit: 100 }).exact).toBe(true);
    const offByOne = exactness({ allowed, used: [{ ten_a: 100, ten_b: 100 }, { ten_a: 100, ten_b: 101 }], limit: 100 });
    expect(offByOne.exact).toBe(false);
    expect(offByOne.rows.find((r) => r.tenant === "ten_b")).toMatchObject({ exact: false, counters: [100, 101] });
    // Counters that agree with the answers but passed the limit are not exact either.
    expect(exactness({ allowed: { ten_a: 101 }, used: [{ ten_a: 101 }], limit: 100 }).exact).toBe(false);
    // A counter that could not be read (undefined) is not exact.
    expect(exactness({ allowed, used: [{ ten_a: 100 }], limit: 100 }).exact).toBe(false);
    expect(exactness({ allowed: {}, used: [], limit: 100 }).exact).toBe(false);
  });

  it("spreads unsorted values into p50, p99 and max", () => {
    expect(spread([5, 1, 3, 2, 4])).toEqual({ p50: 3, p99: 5, max: 5, n: 5 });
    expect(spread([])).toEqual({ p50: 0, p99: 0, max: 0, n: 0 });
  });
});
