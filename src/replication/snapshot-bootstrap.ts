import { existsSync, statSync } from "node:fs";
import Database from "better-sqlite3";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiError, jetstreamManager, type StreamState } from "@nats-io/jetstream";
import type { ReplicationConfig } from "../config.js";
import { BulkheadError } from "../errors.js";
import { restoreSnapshot, unbridgedGap } from "./snapshots.js";

/**
 * Before the sidecar opens its file (ADR 73): a file that holds nothing yet
 * (absent, or revision 0) is replaced by the newest snapshot that verifies,
 * so a new sidecar applies only the stream's tail. With no usable snapshot it
 * replays the stream from the start, unless the stream no longer starts at 1
 * (imported, or its head purged): then it refuses to start, naming why.
 */
export async function bootstrapFromSnapshot(config: ReplicationConfig, dbPath: string, log: (message: string) => void): Promise<void> {
  if (fileRevision(dbPath) > 0) return;
  const nc = await connect({ servers: config.natsServers, name: "bulkhead-bootstrap" }).catch((error: unknown) => {
    throw new BulkheadError("REPLICATION_UNAVAILABLE", `cannot reach NATS at ${config.natsServers.join(",")}: ${(error as Error).message}`);
  });
  try {
    const state = await streamState(nc, config.stream);
    if (!state) return;
    const firstSeq = state.messages === 0 ? state.last_seq + 1 : state.first_seq;
    const restored = await restoreSnapshot(nc, config.stream, { firstSeq, lastSeq: state.last_seq }, dbPath, log);
    if (restored !== null) return;
    if (firstSeq > 1) throw unbridgedGap(config.stream, firstSeq, 0);
    if (state.last_seq > 0) log(`no usable snapshot of stream ${config.stream}: replaying it from the start`);
  } finally {
    await nc.close().catch(() => {});
  }
}

/**
 * The stream's state, or null when it does not exist yet. A cluster elects
 * its JetStream meta leader shortly after start and API requests time out
 * until then, so this retries for a while (as opening the log does).
 */
export async function streamState(nc: NatsConnection, stream: string): Promise<StreamState | null> {
  const giveUpAt = performance.now() + 30_000;
  for (;;) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 2_000 });
      return (await jsm.streams.info(stream)).state;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === 10059) return null; // no stream yet: nothing to restore
      if (performance.now() > giveUpAt) {
        throw new BulkheadError("REPLICATION_UNAVAILABLE", `cannot read stream '${stream}' to look for a snapshot: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** The revision a file holds without opening it for writing: 0 for an absent, empty or never-migrated file. */
export function fileRevision(dbPath: string): number {
  if (!existsSync(dbPath) || statSync(dbPath).size === 0) return 0;
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
    return hasMeta ? Number(db.prepare("SELECT value FROM meta WHERE key = 'revision'").pluck().get() ?? 0) : 0;
  } finally {
    db.close();
  }
}
