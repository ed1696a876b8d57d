import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { listSnapshots, openSnapshotStore } from "../../src/replication/snapshots.js";
import { startReplicatedSidecars, type ReplicatedSidecars } from "../support/replicated-sidecars.js";
import { testClock } from "../support/test-time.js";

// Periodic snapshots (ADR 73): two real sidecars on a real three-node
// JetStream cluster. The test takes each sidecar's looks itself (tick), in a
// chosen order, so who writes does not depend on timers: a sidecar writes
// only when the bucket did not change since its previous look and it has
// applied entries past the newest snapshot.
const STREAM = "BULKHEAD_SNAPSHOT_SCHEDULE";
const clock = testClock();
let setup: ReplicatedSidecars;
let nc: NatsConnection;

beforeAll(async () => {
  setup = await startReplicatedSidecars({ clock, stream: STREAM, count: 2 });
  nc = await connect({ servers: setup.cluster.urls() });
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await setup?.close();
});

const newest = async () => {
  const store = await openSnapshotStore(nc, STREAM);
  return store ? (await listSnapshots(store)).map((info) => Number(info.metadata!.revision)) : [];
};
const write = (n: number) =>
  setup.admins[0]!("putMembership", { tenantId: "ten_acme", membership: { actorId: `usr_sched_${n}`, role: "viewer" }, reason: "customer_request: schedule test" });

describe("periodic snapshots", () => {
  it("one sidecar writes per quiet interval; the other, having seen it, stands back", async () => {
    const [a, b] = setup.sidecars.map((s) => s.bulkhead.snapshots!);
    expect(await a!.tick(), "a first look only notes what is there").toBe(false);
    expect(await b!.tick()).toBe(false);
    await write(1);
    const first = await setup.sidecars[0]!.bulkhead.replication!.catchUp();
    expect(await a!.tick(), "quiet since A's last look, and entries past the newest").toBe(true);
    expect(await newest()).toEqual([first]);
    await setup.sidecars[1]!.bulkhead.replication!.catchUp();
    expect(await b!.tick(), "the bucket changed since B's last look").toBe(false);
    expect(await b!.tick(), "quiet, but nothing applied past the newest").toBe(false);

    await write(2);
    const second = await setup.sidecars[1]!.bulkhead.replication!.catchUp();
    expect(await b!.tick()).toBe(true);
    await setup.sidecars[0]!.bulkhead.replication!.catchUp();
    expect(await a!.tick(), "B wrote since A's last look").toBe(false);
    expect(await newest()).toEqual([second, first]);
  });
});
