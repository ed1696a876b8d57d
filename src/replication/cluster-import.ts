import { existsSync, rmSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { streamState } from "./snapshot-bootstrap.js";
import { BulkheadError, UsageError } from "../errors.js";
import Database from "better-sqlite3";
import { openDatabase, requireIntact } from "../store/database.js";
import type { ProgressSettings } from "./byte-progress.js";
import { listSnapshots, withoutLocalState, openSnapshotStore, snapshotBucket, uploadSnapshot } from "./snapshots.js";

export interface ImportOptions {
  dbPath: string;
  natsServers: string[];
  stream: string;
  replicas: number;
  log: (message: string) => void;
  /** How often the upload reports its bytes (defaults: byte-progress.ts). */
  progress?: ProgressSettings;
}

/**
 * `bulkhead cluster import` (issue 13, ADR 74): seeds an absent (or empty)
 * stream from a single-node database at store_revision R. The file is
 * stored as the stream's snapshot at R and the stream is created with
 * first_seq R+1, so revisions (min_revision tokens) continue where the
 * single node left them; sidecars joining restore the snapshot. A stream
 * that holds entries, or a bucket that holds snapshots, is refused before
 * anything is written.
 */
export async function importDatabase(options: ImportOptions): Promise<{ revision: number }> {
  const { dbPath, stream, log } = options;
  if (!existsSync(dbPath)) throw new UsageError(`--db ${dbPath}: no such file`);
  const nc = await connect({ servers: options.natsServers, name: "bulkhead-import" }).catch((error: unknown) => {
    throw new UsageError(`--nats-url: cannot reach NATS at ${options.natsServers.join(",")}: ${(error as Error).message}`);
  });
  const copy = `${dbPath}.import-${process.pid}`;
  rmSync(copy, { force: true });
  try {
    const existing = await streamState(nc, stream);
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    if (existing && existing.last_seq > 0) {
      throw new UsageError(`--stream ${stream}: the stream is not empty (last sequence ${existing.last_seq}); import seeds only a new stream, and nothing was written`);
    }
    const snapshots = await openSnapshotStore(nc, stream);
    if (snapshots && (await listSnapshots(snapshots)).length > 0) {
      throw new UsageError(`--stream ${stream}: bucket ${snapshotBucket(stream)} already holds snapshots; import seeds only a new stream, and nothing was written`);
    }
    log(`copying ${dbPath} (migrations, then without this node's own decision log)`);
    // The operator's file is only read; the copy is brought to this build's schema, which every sidecar restoring it runs.
    const source = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      source.prepare("VACUUM INTO ?").run(copy);
    } finally {
      source.close();
    }
    const migrated = openDatabase(copy);
    requireIntact(migrated);
    migrated.close();
    const meta = withoutLocalState(copy);
    log(`uploading snapshot at revision ${meta.revision} to bucket ${snapshotBucket(stream)}`);
    const stored = await uploadSnapshot(nc, stream, copy, meta, options.replicas, { log, settings: options.progress });
    log(`creating stream ${stream} with first sequence ${meta.revision + 1}`);
    try {
      if (existing) await jsm.streams.delete(stream); // empty: its first sequence can only be set at creation
      await jsm.streams.add({
        name: stream, subjects: [`${stream}.>`], num_replicas: options.replicas, duplicate_window: 120_000_000_000, first_seq: meta.revision + 1,
      });
    } catch (error) {
      await (await openSnapshotStore(nc, stream))?.destroy().catch(() => {});
      throw new BulkheadError("REPLICATION_UNAVAILABLE", `cannot create stream '${stream}' (the snapshot was removed again): ${(error as Error).message}`);
    }
    log(`imported ${dbPath} into stream ${stream} at revision ${stored.revision}; sidecars started on empty files restore it`);
    return { revision: stored.revision };
  } finally {
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${copy}${suffix}`, { force: true });
    await nc.close().catch(() => {});
  }
}
