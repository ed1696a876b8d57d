import { existsSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import cluster from "node:cluster";
import { journalPathFor } from "../audit/decision-log.js";
import { createBulkhead, type Bulkhead } from "../compose.js";
import { setFlagsFromString } from "node:v8";
import { loadConfig, secretValues, type Config, type HeapMode } from "../config.js";
import { resolveSettings, SETTING_OPTIONS } from "../config-sources.js";
import { createLogger, messageLog, type Logger } from "../log/logger.js";
import { readyLine } from "./ready-line.js";
import { isClusterWorker, parseWorkers, runPrimary } from "./serve-cluster.js";
import { USAGE } from "./usage.js";

// `bulkhead serve`: the sidecar itself. Loaded only when it runs, like every
// subcommand, so a production install carries only what serving needs.


export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...SETTING_OPTIONS, "no-watch": { type: "boolean" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // Flags, the environment and the config file, merged once and exported, so
  // every part that reads a variable (the key secret, the cluster's workers)
  // sees the same settings as loadConfig.
  const settings = resolveSettings(process.env, values);
  delete process.env.BULKHEAD_CONFIG;
  Object.assign(process.env, settings.env);
  const config = loadConfig(process.env, { "no-watch": values["no-watch"] });
  applyHeapMode(config.heapMode);
  const workers = parseWorkers(process.env.BULKHEAD_WORKERS);
  const primary = workers > 1 && !isClusterWorker();
  const logger = serveLogger(config, primary ? "primary" : isClusterWorker() ? clusterWorkerId() : undefined);
  // The configuration as loaded, credentials censored by the logger's redact paths.
  logger.info({ config }, "configuration loaded");
  if (primary) return runPrimary(config, workers, messageLog(logger));
  // Signals are handled from before the start: a SIGTERM that came while the
  // sidecar was starting used to kill it outright (the default action),
  // skipping the drain and the decision log's flush. It now stops the
  // sidecar as soon as the start is done. An unhandled SIGHUP would terminate.
  const stopRequested = new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
    // A cluster worker whose primary is gone has nobody to restart or stop it.
    if (isClusterWorker()) process.once("disconnect", () => resolve("primary gone"));
  });
  let reload = () => {};
  process.on("SIGHUP", () => reload());
  const { bulkhead, grpcPort, httpPort } = await startOrLeaveNothing(config, logger);
  reload = () => void bulkhead.policies.reload();
  const host = (addr: string) => addr.slice(0, addr.lastIndexOf(":"));
  const grpcAddress = `${host(config.grpcAddr)}:${grpcPort}`;
  const httpAddress = `${host(config.httpAddr)}:${httpPort}`;
  const revisions = { dbPath: config.dbPath, storeRevision: bulkhead.tracker.revision, policyRevision: bulkhead.policies.revision };
  logger.info({ grpcAddress, httpAddress, ...revisions }, `listening: gRPC on ${grpcAddress}, HTTP on ${httpAddress}; store at revision ${revisions.storeRevision}, policy ${revisions.policyRevision}`);
  // Whatever the log level: scripts and tests learn the ports from this line (ready-line.ts).
  process.stderr.write(`${readyLine({ grpcAddress, httpAddress })}\n`);
  const signal = await stopRequested;
  logger.info({ signal }, `${signal}, shutting down`);
  await bulkhead.close();
  logger.info({}, "stopped");
  return 0;
}

/** JSON lines on stdout (README, Logs); `worker` says which process of `--workers N` wrote a line. */
function serveLogger(config: Config, worker: string | number | undefined): Logger {
  return createLogger({ level: config.logLevel ?? "info", deploymentSha: config.deploymentSha, worker, secrets: secretValues(config, process.env) });
}

const clusterWorkerId = (): number => cluster.worker?.id ?? 0;

/**
 * V8's default heap growth let a sidecar that had seen 200,000 members sit
 * near 500 MiB of RSS, most of it garbage the collector had no reason to
 * reclaim yet. --optimize-for-size makes V8 grow the heap in smaller steps
 * and collect sooner (228 MiB at 200,000 members; ADR 67). Set before the
 * store, the caches and the policy threads exist, so all of them are
 * allocated under it; "speed" leaves V8's defaults.
 */
function applyHeapMode(mode: HeapMode | undefined): void {
  if (mode === "size") setFlagsFromString("--optimize-for-size");
}

/**
 * Creates and binds the sidecar. A start that fails (a port in use, a bad
 * bundle) must not leave behind a seeded database, a key secret or an admin
 * token that the next start would silently reuse: the files this attempt
 * created are removed; files that were there before are never touched.
 */
async function startOrLeaveNothing(config: Config, logger: Logger): Promise<{ bulkhead: Bulkhead; grpcPort: number; httpPort: number }> {
  const dir = dirname(config.dbPath);
  const files =
    config.dbPath === ":memory:"
      ? []
      : [config.dbPath, `${config.dbPath}-wal`, `${config.dbPath}-shm`, journalPathFor(config.dbPath)!, join(dir, "key.secret"), join(dir, "admin.token")];
  const created = files.filter((file) => !existsSync(file));
  let bulkhead: Bulkhead | undefined;
  try {
    bulkhead = await createBulkhead(config, { logger });
    return { bulkhead, ...(await bulkhead.listen()) };
  } catch (error) {
    await bulkhead?.close().catch(() => {});
    const left = created.filter((file) => existsSync(file));
    for (const file of left) rmSync(file, { force: true });
    if (left.length > 0) logger.warn({ removed: left }, `start failed; removed the ${left.length} files it had created in ${dir}`);
    throw error;
  }
}
