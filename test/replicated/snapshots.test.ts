import Database from "better-sqlite3";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPLICATED_KEY_SECRET, startReplicatedSidecars, withKeySecret, type ReplicatedSidecars } from "../support/replicated-sidecars.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { storeDigest } from "../support/store-digest.js";
import { testClock } from "../support/test-time.js";
import { readRevision } from "../../src/store/revision-writer.js";
import { listSnapshots, snapshotBucket } from "../../src/replication/snapshots.js";

// Snapshots (ADR 73) on a real three-node JetStream cluster with real
// sidecars: a sidecar started on an empty file restores the newest snapshot
// that verifies and consumes only the tail; a tampered one is refused.
const STREAM = "BULKHEAD_SNAPSHOTS_TEST";
const clock = testClock();
let setup: ReplicatedSidecars;
let nc: NatsConnection;
const joined: TestSidecar[] = [];

beforeAll(async () => {
  setup = await startReplicatedSidecars({ clock, stream: STREAM });
  nc = await connect({ servers: setup.cluster.urls() });
}, 120_000);

afterAll(async () => {
  for (const s of joined) await s.close().catch(() => {});
  await nc?.close();
  await setup?.close();
});

/** A fourth sidecar on an empty file; its log lines are collected. */
async function join(lines: string[]): Promise<TestSidecar> {
  const replication = { natsServers: setup.cluster.urls(), stream: STREAM, stalenessMs: 5_000, replicas: 3 };
  const sidecar = await withKeySecret(REPLICATED_KEY_SECRET, () => startSidecar({ demo: true, config: { replication }, runtime: { clock, log: (m) => lines.push(m) } }));
  joined.push(sidecar);
  return sidecar;
}


async function writeMembers(prefix: string, count: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    await setup.admins[n % 3]!("putMembership", { tenantId: "ten_acme", membership: { actorId: `usr_${prefix}_${n}`, role: "viewer" }, reason: "customer_request: snapshot test" });
  }
}

/** Waits until both sidecars applied the stream's end, then compares every table. */
async function expectAgreement(a: TestSidecar, b: TestSidecar): Promise<void> {
  const last = await a.bulkhead.replication!.catchUp();
  await b.bulkhead.replication!.catchUp();
  expect(readRevision(b.bulkhead.db)).toBe(last);
  const [da, db] = [storeDigest(a.bulkhead.config.dbPath), storeDigest(b.bulkhead.config.dbPath)];
  expect(Object.keys(da)).toContain("memberships");
  expect(db).toEqual(da);
}

describe("snapshots of the change log", () => {
  it("a tampered snapshot (sha256 does not match) is refused; with the whole stream there, the sidecar replays it and agrees", async () => {
    await writeMembers("first", 12);
    const A = setup.sidecars[0]!;
    const taken = await A.bulkhead.writeSnapshot();
    expect(taken.revision).toBe(readRevision(A.bulkhead.db));
    const store = await new Objm(nc).open(snapshotBucket(STREAM));
    const [info] = await listSnapshots(store);
    expect(info!.metadata).toMatchObject({ revision: String(taken.revision), sha256: taken.sha256 });
    // Same name and metadata, other bytes: the object store's own digest is of the new bytes, so only ours can tell.
    const bytes = (await store.getBlob(info!.name))!;
    const tampered = new Database(bytes.length > 0 ? Buffer.from(bytes) : Buffer.alloc(0));
    tampered.prepare("UPDATE memberships SET role = 'owner' WHERE actor_id = 'usr_first_0'").run();
    await store.putBlob({ name: info!.name, metadata: info!.metadata! }, tampered.serialize());
    tampered.close();

    const lines: string[] = [];
    const D = await join(lines);
    expect(lines.join("\n")).toMatch(/snapshot rev-\d+ of stream BULKHEAD_SNAPSHOTS_TEST refused: its sha256 is [0-9a-f]{64}, its metadata says [0-9a-f]{64}/);
    expect(lines.join("\n")).toMatch(/replaying it from the start/);
    await expectAgreement(A, D);
    const role = D.bulkhead.db.prepare("SELECT role FROM memberships WHERE actor_id = 'usr_first_0'").pluck().get();
    expect(role).toBe("viewer");
  }, 120_000);

  it("with the head of the stream purged and only a tampered snapshot, a new sidecar refuses to start, naming the gap", async () => {
    const store = await new Objm(nc).open(snapshotBucket(STREAM));
    const revision = Number((await listSnapshots(store))[0]!.metadata!.revision);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.purge(STREAM, { seq: revision + 1 });
    const lines: string[] = [];
    await expect(join(lines)).rejects.toThrow(/stream 'BULKHEAD_SNAPSHOTS_TEST' starts at sequence \d+ but this file is at revision 0: .*no snapshot .* could be restored/);
    expect(lines.join("\n")).toMatch(/refused: its sha256/);
  }, 60_000);

  it("a sidecar on an empty file restores the newest snapshot, consumes the tail after the purged head, and agrees with the others", async () => {
    const A = setup.sidecars[0]!;
    await writeMembers("second", 6);
    const taken = await A.bulkhead.writeSnapshot();
    await writeMembers("tail", 6);
    const jsm = await jetstreamManager(nc);
    // Everything up to the snapshot is gone from the stream: only the snapshot can bring a new sidecar there.
    await jsm.streams.purge(STREAM, { seq: taken.revision + 1 });
    expect((await jsm.streams.info(STREAM)).state.first_seq).toBe(taken.revision + 1);
    const lines: string[] = [];
    const E = await join(lines);
    expect(lines.join("\n")).toContain(`restored snapshot rev-${String(taken.revision).padStart(12, "0")} of stream ${STREAM} at revision ${taken.revision}`);
    await expectAgreement(A, E);
    await expectAgreement(A, setup.sidecars[2]!);
    // The restored sidecar carries none of A's own decision log.
    expect(E.bulkhead.db.prepare("SELECT count(*) FROM decision_log").pluck().get()).toBe(0);
    // A write through it reaches every sidecar.
    await writeMembers("after", 3);
    await expectAgreement(A, E);
  }, 120_000);

  it("keeps only the newest few snapshots", async () => {
    const A = setup.sidecars[1]!;
    for (let i = 0; i < 4; i++) {
      await writeMembers(`keep${i}`, 1);
      await A.bulkhead.writeSnapshot();
    }
    const store = await new Objm(nc).open(snapshotBucket(STREAM));
    expect((await listSnapshots(store)).length).toBe(3);
  }, 60_000);
});
