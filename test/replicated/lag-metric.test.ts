import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdminCall } from "../support/admin-client.js";
import { scrape, valueOf } from "../support/prometheus.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import type { TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Two real sidecars on a real three-node JetStream cluster (issue 13). B's
// applier is held (entries keep being delivered and queue in its client, as
// on a sidecar too busy to apply them), A writes, and B's own /metrics must
// say how far behind it is: the lag gauges used to read 0 here, because the
// stream's last sequence was learnt only from the pending count of entries
// already applied. The lag seconds compare NATS's stored times with this
// host's wall clock; nothing asserted depends on the date.
const clock = testClock();
let sidecars: TestSidecar[] = [];
let admins: AdminCall[] = [];
let closeAll = async () => {};
const WRITES = 40;

beforeAll(async () => {
  ({ sidecars, admins, close: closeAll } = await startReplicatedSidecars({ clock, stream: "BULKHEAD_LAG_METRIC", count: 2 }));
}, 120_000);

afterAll(() => closeAll());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const lagOf = async (s: TestSidecar) => {
  const scraped = await scrape(s.httpPort);
  return {
    entries: valueOf(scraped, "bulkhead_replication_lag_entries")!,
    seconds: valueOf(scraped, "bulkhead_replication_lag_seconds")!,
    applied: valueOf(scraped, "bulkhead_replication_applied_sequence")!,
  };
};

describe("replication lag on /metrics", () => {
  it("counts entries delivered but not applied, and returns to 0 once the sidecar has caught up", async () => {
    const [A, B] = sidecars as [TestSidecar, TestSidecar];
    const head = await A.bulkhead.replication!.catchUp();
    await B.bulkhead.replication!.catchUp();
    expect(await lagOf(B)).toEqual({ entries: 0, seconds: 0, applied: head });
    // The entry B applied last was stored well before the held ones: a lag in
    // seconds read from it would be larger than the held entries' age.
    await sleep(1_500);

    const release = B.bulkhead.replication!.holdApplying();
    let last = head;
    const firstWrite = performance.now();
    try {
      for (let i = 0; i < WRITES; i++) {
        const write = await admins[0]!<{ storeRevision: number }>("putMembership", {
          tenantId: "ten_globex", membership: { actorId: `usr_lag_${i}`, role: "viewer" }, reason: "customer_request: lag metric",
        });
        last = write.storeRevision;
      }
      expect(last).toBe(head + WRITES);
      // The stream read runs once a second: within a few, B knows the stream's end.
      let seen = await lagOf(B);
      const giveUp = performance.now() + 5_000;
      while (seen.entries < WRITES && performance.now() < giveUp) {
        await sleep(100);
        seen = await lagOf(B);
      }
      expect(seen.applied).toBe(head);
      expect(seen.entries).toBe(WRITES);
      // The age of the oldest entry B has not applied: the first held write's.
      expect(seen.seconds).toBeGreaterThan(0);
      expect(seen.seconds).toBeLessThanOrEqual((performance.now() - firstWrite) / 1000 + 0.25);
      // A wrote them and applied them: no lag there.
      expect((await lagOf(A)).entries).toBe(0);
    } finally {
      release();
    }

    await B.bulkhead.replication!.catchUp();
    expect(await lagOf(B)).toEqual({ entries: 0, seconds: 0, applied: last });
  }, 60_000);
});
