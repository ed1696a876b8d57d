import cluster, { type Worker } from "node:cluster";
import type { Config } from "../config.js";
import { wholeNumber } from "../config.js";
import { prepareStore } from "../compose.js";
import { systemClock } from "../clock.js";

/** At most this many restarts inside RESTART_WINDOW_MS before the primary gives up. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 30_000;
const STOP_GRACE_MS = 10_000;

/** `--workers N` / BULKHEAD_WORKERS: 1 (the default) is one process, no cluster. */
export function parseWorkers(value: string | undefined): number {
  return wholeNumber("--workers", value, 1, 1, 64);
}

/**
 * The primary of `bulkhead serve --workers N` (node:cluster). It prepares the
 * store once (migrations, demo seed, secret files), then forks N workers that
 * each run the ordinary server on the same gRPC and HTTP addresses; cluster
 * hands connections to workers round-robin (grpc-js works under cluster
 * unchanged, grpc/grpc-node#1848). Workers share the SQLite file; a write
 * acknowledged by one is seen by the others' next Check through the
 * ChangeTracker's PRAGMA data_version check, as for separate sidecars.
 *
 * A worker that crashes is replaced; one that exits cleanly is not. Too many
 * crashes in a short window stop the whole server rather than loop.
 * SIGTERM/SIGINT are forwarded and the primary waits for the workers to
 * drain; SIGHUP (policy reload) is forwarded too.
 */
export async function runPrimary(config: Config, workers: number, log: (m: string) => void): Promise<number> {
  prepareStore(config, { clock: systemClock, log });
  let stopping = false;
  let failed = false;
  const restarts: number[] = [];
  const fork = () => cluster.fork({ BULKHEAD_WORKER_OF: String(process.pid) });
  for (let i = 0; i < workers; i++) fork();
  log(`primary ${process.pid} started ${workers} workers over ${config.dbPath}`);

  const stopAll = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    for (const worker of liveWorkers()) worker.process.kill(signal);
    setTimeout(() => liveWorkers().forEach((w) => w.process.kill("SIGKILL")), STOP_GRACE_MS).unref();
  };
  return new Promise<number>((resolve) => {
    cluster.on("exit", (worker: Worker, code, signal) => {
      const crashed = code !== 0 || signal !== null;
      if (!stopping && crashed) {
        // Elapsed time, so monotonic: a wall-clock step must not hide or invent a crash loop.
        const now = performance.now();
        restarts.push(now);
        while (restarts.length > 0 && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
        if (restarts.length > MAX_RESTARTS) {
          log(`worker ${worker.process.pid} died (${signal ?? code}); ${restarts.length} crashes in ${RESTART_WINDOW_MS / 1000}s, stopping`);
          failed = true;
          stopAll("SIGTERM");
        } else {
          log(`worker ${worker.process.pid} died (${signal ?? code}); starting a replacement`);
          fork();
        }
      }
      if (liveWorkers().length === 0 && (stopping || !crashed)) resolve(failed ? 1 : 0);
    });
    process.once("SIGTERM", () => {
      log("SIGTERM, stopping workers");
      stopAll("SIGTERM");
    });
    process.once("SIGINT", () => {
      log("SIGINT, stopping workers");
      stopAll("SIGTERM");
    });
    process.on("SIGHUP", () => liveWorkers().forEach((w) => w.process.kill("SIGHUP")));
  });
}

function liveWorkers(): Worker[] {
  return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
}

export const isClusterWorker = (): boolean => cluster.isWorker;
