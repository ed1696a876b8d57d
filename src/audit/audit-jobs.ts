import { readFileSync } from "node:fs";
import type { Clock } from "../clock.js";
import { ConfigError, type Config } from "../config.js";
import type { Db } from "../store/database.js";
import type { WriteGuard } from "../store/write-lock-backoff.js";
import { readPrivateKey } from "./audit-checkpoint.js";
import { AuditRetention } from "./audit-retention.js";
import { AutoCheckpoints } from "./auto-checkpoints.js";

/** The sidecar's background audit work: decision-log retention (ADR 57) and signed checkpoints (ADR 58). */
export interface AuditJobs {
  retention: AuditRetention;
  /** Undefined when no signing key is configured. */
  checkpoints: AutoCheckpoints | undefined;
  start(): void;
  /** Stops the timers, then writes a last checkpoint if one is due (call after the decision log's last flush). */
  stop(): void;
}

export const AUDIT_JOB_INTERVAL_MS = 60_000;

export function createAuditJobs(
  config: Pick<Config, "decisionLogRetention" | "auditCheckpoints" | "auditJobIntervalMs">,
  deps: { db: Db; clock: Clock; guard: WriteGuard; log: (message: string) => void },
): AuditJobs {
  const rules = config.decisionLogRetention ?? { maxAgeDays: 0, maxRecords: 0 };
  const retention = new AuditRetention({ ...deps, chain: "decision_log", rules });
  const settings = config.auditCheckpoints;
  const checkpoints = settings
    ? new AutoCheckpoints({
        ...deps,
        settings: { privateKeyPem: signingKey(settings.keyFile), dir: settings.dir, everyRecords: settings.everyRecords, intervalMs: settings.intervalSeconds * 1000 },
      })
    : undefined;
  return {
    retention,
    checkpoints,
    start() {
      retention.start(config.auditJobIntervalMs ?? AUDIT_JOB_INTERVAL_MS);
      checkpoints?.start();
    },
    stop() {
      retention.stop();
      checkpoints?.stop();
      checkpoints?.tick();
    },
  };
}

/** Read and checked at start, so a wrong key fails the start instead of every checkpoint later. */
function signingKey(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`BULKHEAD_AUDIT_CHECKPOINT_KEY=${file}: ${(error as Error).message}`);
  }
  try {
    readPrivateKey(pem, "BULKHEAD_AUDIT_CHECKPOINT_KEY");
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return pem;
}
