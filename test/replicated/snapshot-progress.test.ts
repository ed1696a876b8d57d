import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listSnapshots, openSnapshotStore, restoreSnapshot, uploadSnapshot, withoutLocalState } from "../../src/replication/snapshots.js";
import { streamState } from "../../src/replication/snapshot-bootstrap.js";
import { openDatabase } from "../../src/store/database.js";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";

// Byte-level progress of snapshot transfers (ADR 84) through a real
// JetStream object store on a real three-node cluster, with a real SQLite
// file of about 1.5 MiB. Small chunk and threshold settings make a short
// transfer long enough to report; the lines must come per threshold, not per
// chunk, and the restored file must be the uploaded one.
const KiB = 1024;
const settings = { chunkBytes: 16 * KiB, everyBytes: 256 * KiB, everyMs: 60_000 };
let cluster: NatsCluster;
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  nc = await connect({ servers: cluster.urls() });
  // JetStream answers once the cluster elected its meta leader: this waits for it (no such stream yet).
  await streamState(nc, "BULKHEAD_PROGRESS");
  dir = mkdtempSync(join(tmpdir(), "bulkhead-snapshot-progress-"));
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A migrated store file with ~1.5 MiB of incompressible rows beside its tables. */
function bigStoreFile(path: string) {
  const db = openDatabase(path);
  db.exec("CREATE TABLE ballast (b BLOB)");
  const insert = db.prepare("INSERT INTO ballast VALUES (?)");
  db.transaction(() => { for (let i = 0; i < 96; i++) insert.run(randomBytes(16 * KiB)); })();
  db.close();
  return withoutLocalState(path);
}

const progressLines = (lines: string[], verb: string) => lines.filter((l) => l.startsWith(`${verb} snapshot`));
const mibDone = (line: string) => Number(/: ([\d.]+) of/.exec(line)![1]);

describe("snapshot transfer progress", () => {
  it("an upload and a download each print a few byte-count lines, far fewer than chunks, ending at the total", async () => {
    const source = join(dir, "source.db");
    const meta = bigStoreFile(source);
    const size = readFileSync(source).length;
    const chunks = Math.ceil(size / settings.chunkBytes);
    expect(size).toBeGreaterThan(1.4 * 1024 * KiB);

    const uploadLog: string[] = [];
    await uploadSnapshot(nc, "BULKHEAD_PROGRESS", source, meta, 3, { log: (m) => uploadLog.push(m), settings });
    const up = progressLines(uploadLog, "uploading");
    expect(up.length).toBeGreaterThanOrEqual(3); // at least two on the way, then the closing line
    expect(up.length).toBeLessThan(chunks / 4);
    expect(up.at(-1)).toContain("(100%");
    const upDone = up.map(mibDone);
    expect(upDone).toEqual([...upDone].sort((a, b) => a - b));
    // Stored in the small chunks, so the download below also arrives in `chunks` pieces.
    const [info] = await listSnapshots((await openSnapshotStore(nc, "BULKHEAD_PROGRESS"))!);
    expect(info!.chunks).toBe(chunks);

    const downloadLog: string[] = [];
    const target = join(dir, "restored.db");
    const restored = await restoreSnapshot(nc, "BULKHEAD_PROGRESS", { firstSeq: meta.revision + 1, lastSeq: meta.revision }, target, (m) => downloadLog.push(m), settings);
    expect(restored).toBe(meta.revision);
    const down = progressLines(downloadLog, "downloading");
    expect(down.length).toBeGreaterThanOrEqual(3);
    expect(down.length).toBeLessThan(chunks / 4);
    expect(down.at(-1)).toContain("(100%");
    expect(readFileSync(target).equals(readFileSync(source))).toBe(true);
  });

  it("with the default thresholds a small snapshot transfers silently", async () => {
    const source = join(dir, "small.db");
    const db = openDatabase(source);
    db.close();
    const meta = withoutLocalState(source);
    const log: string[] = [];
    await uploadSnapshot(nc, "BULKHEAD_PROGRESS_SMALL", source, meta, 3, { log: (m) => log.push(m) });
    await restoreSnapshot(nc, "BULKHEAD_PROGRESS_SMALL", { firstSeq: meta.revision + 1, lastSeq: meta.revision }, join(dir, "small-restored.db"), (m) => log.push(m));
    expect(log.filter((l) => / MiB \(/.test(l))).toEqual([]);
  });
});
