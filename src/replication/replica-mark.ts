import type { Db } from "../store/database.js";

/**
 * A row in `meta` that says the last sidecar on this file ran it in
 * replicated mode, so the file is a view of the change log, for a tool that
 * opens the file directly (the operator's shell rarely has the sidecar's
 * BULKHEAD_NATS_URL). Its one reader, `bulkhead billing`'s refusal, went when
 * the command moved to AdminService (ADR 84); no code reads it now. It is not state any
 * decision reads and it changes no revision; every sidecar of a stream holds
 * the same value, so their files still compare equal.
 */
const KEY = "replicated_view";

/** Marks the file as a view of the change log (replicated mode, before anything is applied). */
export function markReplicaView(db: Db): void {
  db.prepare("INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = 1").run(KEY);
}

/** A single-node sidecar writes the file itself from here on: it is no longer a view. */
export function forgetReplicaView(db: Db): void {
  db.prepare("DELETE FROM meta WHERE key = ?").run(KEY);
}

export function isReplicaView(db: Db): boolean {
  return db.prepare("SELECT value FROM meta WHERE key = ?").pluck().get(KEY) === 1;
}
