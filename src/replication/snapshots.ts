import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import type { NatsConnection } from "@nats-io/transport-node";
import { Objm, type ObjectInfo, type ObjectStore } from "@nats-io/obj";
import { BulkheadError } from "../errors.js";
import type { Db } from "../store/database.js";
import { MIGRATIONS } from "../store/migrations.js";
import { ByteProgress, countedStream, PROGRESS_DEFAULTS, readCounted, type ProgressSettings } from "./byte-progress.js";

/**
 * Snapshots of the change log's view (issue 13, ADR 73): a consistent copy
 * of a sidecar's SQLite file at applied sequence N, in a JetStream object
 * store bucket named after the stream, with N, the schema version and a
 * sha256 of the bytes in its metadata. A sidecar on an empty file restores
 * the newest one that verifies and consumes the stream from N+1.
 */

/** Snapshots kept per stream; older ones are deleted after a new one is stored. */
export const SNAPSHOTS_KEPT = 3;

/**
 * What only this sidecar wrote into its file, which no other sidecar holds:
 * its own decision log (and that chain's retention anchor), its counters of
 * dropped decisions, its checkpoint bookkeeping and its flag last-evaluated
 * times (ADR 52). A snapshot leaves them
 * out, so a restored file is what replaying the log would have built.
 */
const LOCAL_ONLY = [
  "DELETE FROM decision_log",
  "DELETE FROM audit_anchor WHERE chain = 'decision_log'",
  "UPDATE flags SET last_evaluated_at = NULL",
  "DELETE FROM meta WHERE key IN ('decisions_dropped', 'audit_checkpoint_last_at', 'audit_checkpoint_last_row_ids')",
];

export interface SnapshotMeta {
  revision: number;
  schemaVersion: number;
  sha256: string;
}

export function snapshotBucket(stream: string): string {
  return `${stream}_snapshots`;
}

const objectName = (revision: number) => `rev-${String(revision).padStart(12, "0")}`;

/**
 * Copies `db` as of one read transaction into `path` (VACUUM INTO reads one
 * consistent state, whatever the applier commits meanwhile) and strips what
 * is local to this sidecar. Answers the copy's revision and schema version.
 */
export function copyForSnapshot(db: Db, path: string): Omit<SnapshotMeta, "sha256"> {
  rmSync(path, { force: true });
  db.prepare("VACUUM INTO ?").run(path);
  return withoutLocalState(path);
}

/** Strips from a copy what only its sidecar wrote; answers its revision and schema version. */
export function withoutLocalState(path: string): Omit<SnapshotMeta, "sha256"> {
  const copy = new Database(path);
  try {
    copy.pragma("journal_mode = DELETE");
    copy.transaction(() => LOCAL_ONLY.forEach((sql) => copy.exec(sql)))();
    copy.exec("VACUUM");
    return {
      revision: copy.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck().get() as number,
      schemaVersion: copy.pragma("user_version", { simple: true }) as number,
    };
  } finally {
    copy.close();
  }
}

/** Where a transfer's progress lines go, and how often (byte-progress.ts). */
export interface TransferProgress {
  log: (message: string) => void;
  settings?: ProgressSettings;
}

/**
 * Stores the file at `path` as the snapshot at its revision, then keeps only
 * the newest SNAPSHOTS_KEPT. A long upload reports bytes sent on `progress`.
 */
export async function uploadSnapshot(
  nc: NatsConnection, stream: string, path: string, meta: Omit<SnapshotMeta, "sha256">, replicas: number, progress?: TransferProgress,
): Promise<SnapshotMeta> {
  const bytes = readFileSync(path);
  const full = { ...meta, sha256: sha256(bytes) };
  const store = await new Objm(nc).create(snapshotBucket(stream), { replicas });
  const chunkBytes = progress?.settings?.chunkBytes ?? PROGRESS_DEFAULTS.chunkBytes;
  const counter = new ByteProgress(`uploading snapshot ${objectName(meta.revision)} of stream ${stream}`, bytes.length, progress?.log ?? (() => {}), progress?.settings);
  await store.put({
    name: objectName(meta.revision),
    description: `bulkhead snapshot of stream ${stream} at revision ${meta.revision}`,
    metadata: { revision: String(full.revision), schema_version: String(full.schemaVersion), sha256: full.sha256 },
    options: { max_chunk_size: chunkBytes },
  }, countedStream(bytes, chunkBytes, counter));
  counter.finish();
  const older = (await listSnapshots(store)).slice(SNAPSHOTS_KEPT);
  for (const info of older) await store.delete(info.name);
  return full;
}

/** Snapshots in the bucket, newest revision first (none when the bucket does not exist). */
export async function listSnapshots(store: ObjectStore): Promise<ObjectInfo[]> {
  const infos = (await store.list()).filter((info) => !info.deleted && info.metadata?.revision !== undefined);
  return infos.sort((a, b) => Number(b.metadata!.revision) - Number(a.metadata!.revision));
}

export async function openSnapshotStore(nc: NatsConnection, stream: string): Promise<ObjectStore | null> {
  try {
    return await new Objm(nc).open(snapshotBucket(stream));
  } catch (error) {
    if (/not found/i.test((error as Error).message)) return null;
    throw error;
  }
}

/**
 * Restores into `dbPath` the newest snapshot that fits the stream (its
 * revision between the stream's first sequence - 1 and its last) and passes
 * verification: the sha256 in its metadata over the bytes read, a schema
 * this build knows, SQLite's integrity check, and the revision in the file
 * itself. One that fails is logged and skipped, never restored. Answers the
 * restored revision, or null when none was restored.
 */
export async function restoreSnapshot(
  nc: NatsConnection, stream: string, bounds: { firstSeq: number; lastSeq: number }, dbPath: string, log: (message: string) => void,
  progress: ProgressSettings = {},
): Promise<number | null> {
  const store = await openSnapshotStore(nc, stream);
  if (!store) return null;
  for (const info of await listSnapshots(store)) {
    const revision = Number(info.metadata!.revision);
    if (revision > bounds.lastSeq || revision < bounds.firstSeq - 1) continue;
    const bytes = await download(store, info, log, progress).catch((error: unknown) => {
      log(`snapshot ${info.name} of stream ${stream} could not be read (${(error as Error).message}); skipped`);
      return null;
    });
    if (!bytes) continue;
    const problem = verify(bytes, info, revision, `${dbPath}.snapshot`);
    if (problem) {
      rmSync(`${dbPath}.snapshot`, { force: true });
      log(`snapshot ${info.name} of stream ${stream} refused: ${problem}`);
      continue;
    }
    // The empty file's WAL and shared memory belong to the file being replaced.
    for (const suffix of ["-wal", "-shm"]) rmSync(`${dbPath}${suffix}`, { force: true });
    renameSync(`${dbPath}.snapshot`, dbPath);
    log(`restored snapshot ${info.name} of stream ${stream} at revision ${revision} (${bytes.length} bytes); consuming from ${revision + 1}`);
    return revision;
  }
  return null;
}

/** One snapshot's bytes (null when gone meanwhile); a long download reports bytes received on `log`. */
async function download(store: ObjectStore, info: ObjectInfo, log: (message: string) => void, settings: ProgressSettings): Promise<Uint8Array | null> {
  const result = await store.get(info.name);
  if (!result) return null;
  const counter = new ByteProgress(`downloading snapshot ${info.name}`, info.size, log, settings);
  const [error, bytes] = await Promise.all([result.error, readCounted(result.data, counter)]);
  if (error) throw error;
  counter.finish();
  return bytes;
}

/** Why the snapshot must not be restored, or null. Leaves a verified copy at `path`. */
function verify(bytes: Uint8Array, info: ObjectInfo, revision: number, path: string): string | null {
  const expected = info.metadata!.sha256;
  const actual = sha256(bytes);
  if (expected !== actual) return `its sha256 is ${actual}, its metadata says ${expected ?? "nothing"}`;
  const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
  const schemaVersion = Number(info.metadata!.schema_version);
  if (!(schemaVersion <= latest)) return `schema version ${info.metadata!.schema_version} is newer than this build knows (${latest})`;
  writeFileSync(path, bytes, { mode: 0o600 });
  const copy = new Database(path, { fileMustExist: true });
  try {
    const check = (copy.pragma("quick_check(1)") as Record<string, unknown>[]).map((row) => String(Object.values(row)[0]));
    if (check[0] !== "ok") return `SQLite's integrity check failed: ${check.join("; ")}`;
    const inFile = copy.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck().get();
    if (inFile !== revision) return `the file is at revision ${String(inFile)}, its metadata says ${revision}`;
    return null;
  } catch (error) {
    return `it is not a readable SQLite file: ${(error as Error).message}`;
  } finally {
    copy.close();
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A stream whose first entries are gone cannot be replayed from revision 0; only a snapshot bridges the gap. */
export function unbridgedGap(stream: string, firstSeq: number, applied: number): BulkheadError {
  return new BulkheadError(
    "REPLICATION_UNAVAILABLE",
    `stream '${stream}' starts at sequence ${firstSeq} but this file is at revision ${applied}: entries ${applied + 1}..${firstSeq - 1} exist only in a snapshot, and no snapshot in bucket ${snapshotBucket(stream)} could be restored; refusing to start rather than serve a partial view`,
  );
}
