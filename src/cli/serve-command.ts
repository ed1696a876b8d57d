import { existsSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { createBulkhead, type Bulkhead } from "../compose.js";
import { loadConfig, type Config } from "../config.js";
import { isClusterWorker, parseWorkers, runPrimary } from "./serve-cluster.js";
import { USAGE } from "./usage.js";

// `bulkhead serve`: the sidecar itself. Loaded only when it runs, like every
// subcommand, so a production install carries only what serving needs.


export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      "grpc-addr": { type: "string" },
      "http-addr": { type: "string" },
      db: { type: "string" },
      "policy-dir": { type: "string" },
      demo: { type: "boolean" },
      "caller-tokens": { type: "string" },
      "no-watch": { type: "boolean" },
      workers: { type: "string" },
      "nats-url": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = loadConfig(process.env, values);
  const workers = parseWorkers(values.workers ?? process.env.BULKHEAD_WORKERS);
  if (workers > 1 && !isClusterWorker()) {
    return runPrimary(config, workers, (message) => console.error(`bulkhead: ${message}`));
  }
  const { bulkhead, grpcPort, httpPort } = await startOrLeaveNothing(config);
  const host = (addr: string) => addr.slice(0, addr.lastIndexOf(":"));
  console.error(`bulkhead: gRPC listening on ${host(config.grpcAddr)}:${grpcPort}`);
  console.error(`bulkhead: HTTP listening on ${host(config.httpAddr)}:${httpPort}`);
  console.error(`bulkhead: store ${config.dbPath} at revision ${bulkhead.tracker.revision}; policy ${bulkhead.policies.revision}`);
  // Registered before waiting: an unhandled SIGHUP would terminate the process.
  process.on("SIGHUP", () => void bulkhead.policies.reload());
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.error(`bulkhead: ${signal}, shutting down`);
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    // A cluster worker whose primary is gone has nobody to restart or stop it.
    if (isClusterWorker()) process.once("disconnect", () => stop("primary gone"));
  });
  await bulkhead.close();
  return 0;
}

/**
 * Creates and binds the sidecar. A start that fails (a port in use, a bad
 * bundle) must not leave behind a seeded database, a key secret or an admin
 * token that the next start would silently reuse: the files this attempt
 * created are removed; files that were there before are never touched.
 */
async function startOrLeaveNothing(config: Config): Promise<{ bulkhead: Bulkhead; grpcPort: number; httpPort: number }> {
  const dir = dirname(config.dbPath);
  const files = config.dbPath === ":memory:" ? [] : [config.dbPath, `${config.dbPath}-wal`, `${config.dbPath}-shm`, join(dir, "key.secret"), join(dir, "admin.token")];
  const created = files.filter((file) => !existsSync(file));
  let bulkhead: Bulkhead | undefined;
  try {
    bulkhead = await createBulkhead(config);
    return { bulkhead, ...(await bulkhead.listen()) };
  } catch (error) {
    await bulkhead?.close().catch(() => {});
    const left = created.filter((file) => existsSync(file));
    for (const file of left) rmSync(file, { force: true });
    if (left.length > 0) console.error(`bulkhead: start failed; removed the ${left.length} files it had created in ${dir}`);
    throw error;
  }
}
