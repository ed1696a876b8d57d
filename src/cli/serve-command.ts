import { parseArgs } from "node:util";
import { createBulkhead } from "../compose.js";
import { DEFAULTS, loadConfig } from "../config.js";
import { isClusterWorker, parseWorkers, runPrimary } from "./serve-cluster.js";

// `bulkhead serve`: the sidecar itself. Loaded only when it runs, like every
// subcommand, so a production install carries only what serving needs.

export const USAGE = `bulkhead - tenant-boundary decision sidecar

Usage:
  bulkhead serve [flags]     start the gRPC and HTTP servers
  bulkhead policy build      compile policies/ to Wasm into dist/policies (hot-reloaded by serve)
  bulkhead policy test       run the Rego unit tests (opa test)
  bulkhead policy diff       list allow <-> deny flips between two bundles (bulkhead policy --help)
  bulkhead xtest <suite>     run a cross-tenant attack suite (bulkhead xtest --help)
  bulkhead billing ...       reconcile with Stripe, replay stored events (bulkhead billing --help)
  bulkhead admin <command>   tenants, members, roles, plans, overrides, API keys, staff,
                             approvals, impersonation over AdminService (bulkhead admin --help)
  bulkhead --version | --help

serve flags (each also an environment variable):
  --grpc-addr HOST:PORT   BULKHEAD_GRPC_ADDR      gRPC listen address (default ${DEFAULTS.grpcAddr})
  --http-addr HOST:PORT   BULKHEAD_HTTP_ADDR      HTTP listen address (default ${DEFAULTS.httpAddr})
  --db PATH               BULKHEAD_DB             SQLite file (default ${DEFAULTS.dbPath})
  --policy-dir DIR        BULKHEAD_POLICY_DIR     compiled bundle directory (default dist/policies)
  --demo                  BULKHEAD_DEMO=1         seed the demo dataset into an empty database
  --caller-tokens A,B     BULKHEAD_CALLER_TOKENS  bearer tokens callers must present
                          BULKHEAD_STRIPE_WEBHOOK_SECRETS  webhook signing secrets (comma-separated)
                          BULKHEAD_STRIPE_API_KEY, BULKHEAD_STRIPE_API_URL  Stripe API (stripe-mock in tests)
                          BULKHEAD_PAST_DUE_GRACE_DAYS  past_due grace before read-only (default 14)
  --no-watch                                      do not hot-reload the policy bundle
  --workers N             BULKHEAD_WORKERS        N server processes (node:cluster) sharing the
                                                  addresses and the database (default 1)

A non-loopback address is refused unless caller tokens are set.
`;

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
  const bulkhead = await createBulkhead(config);
  const { grpcPort, httpPort } = await bulkhead.listen();
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
