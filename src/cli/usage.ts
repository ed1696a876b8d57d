import { DECISION_CACHE_MB, DEFAULTS } from "../config.js";

// The top-level help, shared by `bulkhead --help` and `bulkhead serve --help`.
// Kept apart from both so printing it loads no server code.

export const USAGE = `bulkhead - tenant-boundary decision sidecar

Usage:
  bulkhead serve [flags]     start the gRPC and HTTP servers
  bulkhead policy build      compile policies/ to Wasm into dist/policies (hot-reloaded by serve)
  bulkhead policy test       fmt, check, opa test and the decision fixtures (bulkhead policy test --help)
  bulkhead policy explain    why one request is allowed or denied (bulkhead policy explain --help)
  bulkhead policy diff       list allow <-> deny flips between two bundles (bulkhead policy --help)
  bulkhead xtest <suite>     run a cross-tenant attack suite (bulkhead xtest --help)
  bulkhead billing ...       reconcile with Stripe, replay events, recalculate, list events (bulkhead billing --help)
  bulkhead admin <command>   tenants, members, roles, plans, overrides, API keys, staff,
                             approvals, impersonation over AdminService (bulkhead admin --help)
  bulkhead flags ...         list, show, put, kill and stale feature flags (bulkhead flags --help)
  bulkhead audit ...         verify the audit hash chains, sign checkpoints, export a tenant's records
  bulkhead decisions ...     query and tail the decision log (bulkhead decisions --help)
  bulkhead doctor [flags]    the configuration (secrets masked), store, policy, sidecar and NATS health
  bulkhead cluster import ...  seed a new replicated stream from a single-node database (bulkhead cluster --help)
  bulkhead completion bash|zsh  print a shell completion script (source <(bulkhead completion bash))
  bulkhead --version | --help

serve settings: every BULKHEAD_X_Y variable below is also the flag --x-y and a key of the
config file (--config FILE or BULKHEAD_CONFIG, a JSON object of variable names; 0600 for secrets,
which flags would show in ps). A flag wins over the environment, which wins over the file:
  --grpc-addr HOST:PORT   BULKHEAD_GRPC_ADDR      gRPC listen address (default ${DEFAULTS.grpcAddr})
  --http-addr HOST:PORT   BULKHEAD_HTTP_ADDR      HTTP listen address (default ${DEFAULTS.httpAddr})
  --db PATH               BULKHEAD_DB             SQLite file (default ${DEFAULTS.dbPath})
  --policy-dir DIR        BULKHEAD_POLICY_DIR     compiled bundle directory (default dist/policies)
  --demo                  BULKHEAD_DEMO=1         seed the demo dataset into an empty database
  --console               BULKHEAD_CONSOLE=1      serve the operations console at /console/ (default off)
  --caller-tokens A,B     BULKHEAD_CALLER_TOKENS  bearer tokens callers must present
                          BULKHEAD_STRIPE_WEBHOOK_SECRETS  webhook signing secrets (comma-separated)
                          BULKHEAD_STRIPE_API_KEY, BULKHEAD_STRIPE_API_URL  Stripe API (stripe-mock in tests)
                          BULKHEAD_PAST_DUE_GRACE_DAYS  past_due grace before read-only (default 14)
                          BULKHEAD_ENVIRONMENT    the environment flags are evaluated in (default production)
                          BULKHEAD_OFREP_RATE_PER_MINUTE  OFREP requests a minute per caller token
                                                  before 429 (default 60000; 0 = no limit)
                          BULKHEAD_ADMIN_TOKEN    AdminService tokens (default: generated into admin.token)
                          BULKHEAD_SYNC_TOKENS    directory-sync tokens (SyncMemberships only)
                          BULKHEAD_ADMIN_REASON_CODES  reason codes admin writes accept (comma-separated)
                          BULKHEAD_IMPERSONATION_MAX_TTL_SECONDS  longest impersonation (default 3600)
                          BULKHEAD_POLICY_WORKERS  policy evaluation threads (default 2, 1 to 16)
                          BULKHEAD_POLICY_BUDGET_MS  longest one evaluation may run (default 250)
                          BULKHEAD_AUTHZEN_DEFAULT_TENANT  tenant of AuthZEN requests naming none (default: none, 400)
                          BULKHEAD_AUTHZEN_RESOURCES  JSON file of resources AuthZEN resource search answers with
                          BULKHEAD_KEY_SECRET     API-key hash secret (default: generated into key.secret; replicated mode: the same on every sidecar)
                          BULKHEAD_ADMIN_TOKEN_FILE  file the admin CLI reads its token from
                          BULKHEAD_DECISION_LOG_MAX_AGE_DAYS  prune decisions older than this (default 0: keep)
                          BULKHEAD_DECISION_LOG_MAX_RECORDS  keep at most this many decisions (default 0: no bound)
                          BULKHEAD_DECISION_LOG_FILE  also write decisions as OPA-shaped JSON lines here (- = stdout)
                          BULKHEAD_DECISION_LOG_URL  also POST them, gzip'd JSON batches, to this collector
                          BULKHEAD_DECISION_LOG_MASK  JSON pointers removed from those events (/input/...)
                          BULKHEAD_DECISION_LOG_SINK_BUFFER  events held while the collector is down (default 10000)
                          BULKHEAD_AUDIT_CHECKPOINT_KEY  Ed25519 private key (PEM file): write signed checkpoints
                          BULKHEAD_AUDIT_CHECKPOINT_DIR  where they go (default: <db>.checkpoints/)
                          BULKHEAD_AUDIT_CHECKPOINT_EVERY_RECORDS  one every N records (default 10000)
                          BULKHEAD_AUDIT_CHECKPOINT_INTERVAL_SECONDS  or every T seconds with new records (default 300)
  --nats-url URL[,URL]    BULKHEAD_NATS_URL       replicated mode: the change log on NATS JetStream,
                                                  a local SQLite view per sidecar (README)
                          BULKHEAD_NATS_STREAM, BULKHEAD_NATS_STALENESS_MS, BULKHEAD_NATS_REPLICAS
                          BULKHEAD_SNAPSHOT_INTERVAL_S  look for a due snapshot every S seconds (default 600; 0 off)
  --log-level LEVEL       BULKHEAD_LOG_LEVEL      JSON log lines on stdout from this level: fatal, error,
                                                  warn (no line per call), info (default: a line per
                                                  gRPC call), debug, trace, silent
                          BULKHEAD_DEPLOYMENT_SHA  the build being run (git sha or tag), on every log line
  --heap-mode size|speed  BULKHEAD_HEAP_MODE      V8 heap tuning: size (default) keeps RSS under 256 MiB
                                                  with 200,000 members seen; speed is V8's default
  --decision-cache-mb N   BULKHEAD_DECISION_CACHE_MB  memory for cached policy answers of repeated
                                                  Checks (default ${DECISION_CACHE_MB}; 0 = off; ADR 68)
  --otlp-endpoint URL     BULKHEAD_OTLP_ENDPOINT  export trace spans over OTLP/HTTP, e.g.
                                                  http://collector:4318/v1/traces (default: off)
  --otel-service-name N   BULKHEAD_OTEL_SERVICE_NAME  service.name of the spans (default bulkhead)
  --no-watch                                      do not hot-reload the policy bundle
  --workers N             BULKHEAD_WORKERS        N server processes (node:cluster) sharing the
                                                  addresses and the database (default 1)

A non-loopback address is refused unless caller tokens are set. An unknown BULKHEAD_*
variable is refused as a typo.
`;
