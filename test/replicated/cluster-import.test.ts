import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminClient } from "../support/admin-client.js";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { REPLICATED_KEY_SECRET, withKeySecret } from "../support/replicated-sidecars.js";
import { testClock } from "../support/test-time.js";
import { readRevision } from "../../src/store/revision-writer.js";
import { importDatabase } from "../../src/replication/cluster-import.js";
import { listSnapshots, snapshotBucket } from "../../src/replication/snapshots.js";

// `bulkhead cluster import` (ADR 74) on a real three-node JetStream cluster:
// a single-node demo database with writes on it becomes the snapshot of a new
// stream that starts at its revision + 1; three sidecars on empty files join
// it and hold the same data; revisions continue. A non-empty stream is refused.
const STREAM = "BULKHEAD_IMPORT_TEST";
const clock = testClock();
let cluster: NatsCluster;
let nc: NatsConnection;
let sourcePath = "";
let sourceRevision = 0;
const sidecars: TestSidecar[] = [];
const closers: (() => void)[] = [];

beforeAll(async () => {
  // The single node: demo seed plus a few admin writes, then stopped.
  const single = await startSidecar({ demo: true, runtime: { clock } });
  const { client, call } = adminClient(single.grpcAddress);
  for (let n = 0; n < 5; n++) {
    await call("putMembership", { tenantId: "ten_acme", membership: { actorId: `usr_single_${n}`, role: "viewer" }, reason: "customer_request: import test" });
  }
  await single.check({ principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project", id: "p1", tenantId: "ten_acme" } });
  client.close();
  // The sidecar's directory goes with it: keep a consistent copy of its file, as an operator's backup would be.
  sourcePath = join(mkdtempSync(join(tmpdir(), "bulkhead-import-")), "single.db");
  single.bulkhead.decisionLog.flush();
  single.bulkhead.db.prepare("VACUUM INTO ?").run(sourcePath);
  sourceRevision = readRevision(single.bulkhead.db);
  await single.close();
  cluster = await startNatsCluster(3);
  nc = await connect({ servers: cluster.urls() });
}, 120_000);

afterAll(async () => {
  for (const close of closers) close();
  for (const s of sidecars) await s.close().catch(() => {});
  await nc?.close();
  await cluster?.stop();
});

function rows(path: string, table: string): string[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(`SELECT * FROM "${table}"`).all() as unknown[]).map((row) => JSON.stringify(row)).sort();
  } finally {
    db.close();
  }
}
function digest(path: string): Record<string, string> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'decision_log' ORDER BY name").pluck().all() as string[];
  db.close();
  return Object.fromEntries(tables.map((t) => [t, createHash("sha256").update(rows(path, t).join("\n")).digest("hex")]));
}
const replication = () => ({ natsServers: cluster.urls(), stream: STREAM, stalenessMs: 5_000, replicas: 3 });
const run = (dbPath: string, lines: string[] = []) => importDatabase({ dbPath, natsServers: cluster.urls(), stream: STREAM, replicas: 3, log: (m) => lines.push(m) });

describe("bulkhead cluster import", () => {
  it("seeds a new stream from a single-node database; three sidecars join it with the same data and revisions continue from R", async () => {
    expect(sourceRevision).toBeGreaterThan(5);
    const lines: string[] = [];
    const { revision } = await run(sourcePath, lines);
    expect(revision).toBe(sourceRevision);
    expect(lines.join("\n")).toMatch(/uploading snapshot at revision \d+[\s\S]*creating stream BULKHEAD_IMPORT_TEST with first sequence \d+[\s\S]*imported/);
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info(STREAM);
    expect(state.first_seq).toBe(sourceRevision + 1);
    expect(state.messages).toBe(0);

    for (let i = 0; i < 3; i++) {
      const logs: string[] = [];
      sidecars.push(await withKeySecret(REPLICATED_KEY_SECRET, () => startSidecar({ demo: true, config: { replication: replication() }, runtime: { clock, log: (m) => logs.push(m) } })));
      expect(logs.join("\n")).toContain(`restored snapshot rev-${String(sourceRevision).padStart(12, "0")}`);
      // BULKHEAD_DEMO on a stream that holds data joins it; it does not seed again.
      expect(logs.join("\n")).toContain("has data: joined without seeding");
      expect(readRevision(sidecars[i]!.bulkhead.db)).toBe(sourceRevision);
    }
    expect(rows(sidecars[0]!.bulkhead.config.dbPath, "memberships")).toEqual(rows(sourcePath, "memberships"));
    expect(rows(sidecars[2]!.bulkhead.config.dbPath, "tenants")).toEqual(rows(sourcePath, "tenants"));
    // The single node's own decision log did not travel.
    expect(rows(sourcePath, "decision_log").length).toBeGreaterThan(0);
    expect(rows(sidecars[0]!.bulkhead.config.dbPath, "decision_log")).toEqual([]);

    // A write on the cluster is revision R+1, and a min_revision Check on another sidecar sees it.
    const { client, call } = adminClient(sidecars[0]!.grpcAddress);
    closers.push(() => client.close());
    const write = await call<{ storeRevision: number }>("putMembership", { tenantId: "ten_acme", membership: { actorId: "usr_bob", role: "admin" }, reason: "customer_request: after import" });
    expect(Number(write.storeRevision)).toBe(sourceRevision + 1);
    const answer = await sidecars[2]!.check({
      principal: { tenantId: "ten_acme", actorId: "usr_bob" }, action: "members.invite", resource: { type: "tenant", id: "ten_acme", tenantId: "ten_acme" }, minRevision: sourceRevision + 1,
    });
    expect(Number(answer.storeRevision)).toBeGreaterThanOrEqual(sourceRevision + 1);
    for (const s of sidecars) await s.bulkhead.replication!.catchUp();
    const digests = sidecars.map((s) => digest(s.bulkhead.config.dbPath));
    expect(digests[1]).toEqual(digests[0]);
    expect(digests[2]).toEqual(digests[0]);
  }, 180_000);

  it("refuses a stream that holds entries, and writes nothing", async () => {
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(STREAM)).state;
    const store = await new Objm(nc).open(snapshotBucket(STREAM));
    const snapshotsBefore = (await listSnapshots(store)).map((info) => info.name);
    await expect(run(sourcePath)).rejects.toThrow(/--stream BULKHEAD_IMPORT_TEST: the stream is not empty \(last sequence \d+\); import seeds only a new stream, and nothing was written/);
    expect((await jsm.streams.info(STREAM)).state).toMatchObject({ first_seq: before.first_seq, last_seq: before.last_seq, messages: before.messages });
    expect((await listSnapshots(store)).map((info) => info.name)).toEqual(snapshotsBefore);
  }, 60_000);

  it("names the field it needs: --db and --nats-url, and --help says how", async () => {
    const cli = (args: string[]) => promisify(execFile)(process.execPath, ["dist/src/cli/main.js", "cluster", ...args]).then(
      (ok) => ({ code: 0, ...ok }), (failed: { code: number; stdout: string; stderr: string }) => failed,
    );
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("bulkhead cluster import --db FILE --nats-url URL");
    expect((await cli(["import", "--nats-url", "nats://127.0.0.1:1"])).stderr).toContain("--db FILE is required");
    expect((await cli(["import", "--db", "/nonexistent/x.db", "--nats-url", cluster.urls()[0]!])).stderr).toContain("--db /nonexistent/x.db: no such file");
  }, 60_000);
});
