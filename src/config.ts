import { MASKABLE } from "./audit/decision-event.js";
import { isAbsolute, resolve } from "node:path";
import { UsageError } from "./errors.js";
import { checkId } from "./validation.js";
import { DEFAULT_POLICY_DIR } from "./paths.js";
import { EVALUATION_DEFAULTS } from "./engine/policy-manager.js";
import type { WatchdogThresholds } from "./engine/swap-watchdog.js";
import { LOG_LEVELS, type LogLevel } from "./log/log-levels.js";
import type { TracingConfig } from "./telemetry/tracing.js";

export interface Config {
  grpcAddr: string;
  httpAddr: string;
  dbPath: string;
  policyDir: string;
  /** Seed the demo dataset into an empty database. */
  demo: boolean;
  /** Bearer tokens DecisionService callers must present; empty = none required. */
  callerTokens: string[];
  watchPolicies: boolean;
  /** Stripe webhook signing secrets; several are accepted during rotation. */
  stripeWebhookSecrets: string[];
  stripeApiKey: string;
  /** e.g. http://127.0.0.1:12111 for stripe-mock; empty = api.stripe.com. */
  stripeApiUrl: string;
  /** How long past_due keeps its access before dropping to read_only. */
  pastDueGraceDays: number;
  /** AdminService bootstrap tokens; empty = generate admin.token beside the database. */
  adminTokens: string[];
  /** AdminService tokens for the host's directory sync. */
  syncTokens: string[];
  /** The reason codes an admin write's reason must start with. */
  adminReasonCodes: string[];
  /** Serve the operations console under /console/ (BULKHEAD_CONSOLE); off by default. */
  console?: boolean | undefined;
  /** The longest impersonation session staff may start. */
  impersonationMaxTtlSeconds: number;
  /** The environment flag rules are evaluated for (a flag may be on in staging only); default production. */
  environment?: string | undefined;
  /** OFREP requests a minute per caller token before 429 (ADR 51); 0 = no limit. */
  ofrepRatePerMinute: number;
  /** Worker threads that evaluate the policy (ADR 46). */
  policyWorkers: number;
  /** Longest one policy evaluation may run; past it the Check is denied with `policy_timeout`. */
  policyBudgetMs: number;
  /** Post-swap rollback thresholds; not an environment setting (tests and embedders tune it). */
  policyWatchdog?: Partial<WatchdogThresholds> | undefined;
  /** Replicated mode (DESIGN.md section 11); undefined = single-node, no NATS needed. */
  replication?: ReplicationConfig | undefined;
  /** The tenant of AuthZEN requests that name none (single-tenant deployments); unset = such requests are a 400. */
  authzenDefaultTenant?: string | undefined;
  /** JSON file of the resources AuthZEN resource search may answer with (README, AuthZEN). */
  authzenResources?: string | undefined;
  /** Least level written to the JSON log on stdout (default info; debug adds a line per call). */
  logLevel?: LogLevel | undefined;
  /** The build being run (a git sha or release tag), on every log line. */
  deploymentSha?: string | undefined;
  /** Decision-log retention (ADR 57); 0 in both keeps everything, as before. */
  decisionLogRetention?: { maxAgeDays: number; maxRecords: number } | undefined;
  /** Signed checkpoints the sidecar writes itself (ADR 58); undefined = none. */
  auditCheckpoints?: AuditCheckpointConfig | undefined;
  /** Where decisions go besides the table (ADR 71); undefined = the table only. */
  decisionSinks?: DecisionSinkConfig | undefined;
  /** How often the audit jobs (retention) run; not an environment setting (tests shorten it). */
  auditJobIntervalMs?: number | undefined;
  /** V8 heap tuning of `serve` (ADR 67): "size" keeps RSS low, "speed" is V8's default. */
  heapMode?: HeapMode | undefined;
  /** Byte budget of the decision cache in MiB (ADR 68); 0 turns it off; default DECISION_CACHE_MB. */
  decisionCacheMb?: number | undefined;
  /** OTLP trace export (README, Traces); undefined = tracing off, the SDK is not even loaded. */
  tracing?: TracingConfig | undefined;
}

/** Default byte budget, in MiB, of the decision cache (BULKHEAD_DECISION_CACHE_MB, ADR 68); 0 turns it off. */
export const DECISION_CACHE_MB = 16;

export const HEAP_MODES = ["size", "speed"] as const;
export type HeapMode = (typeof HEAP_MODES)[number];

export interface DecisionSinkConfig {
  /** JSON lines file, or "-" for stdout. */
  file?: string | undefined;
  /** HTTP endpoint that takes gzip'd JSON arrays of events (OPA's decision-log API). */
  url?: string | undefined;
  /** JSON pointers removed from every event (/input/..., /bulkhead/...). */
  masks: string[];
  /** Events the HTTP sink holds while its endpoint is down. */
  maxBuffered: number;
}

export interface AuditCheckpointConfig {
  /** PEM file of the Ed25519 private key. */
  keyFile: string;
  dir: string;
  everyRecords: number;
  intervalSeconds: number;
}

export const AUDIT_CHECKPOINT_DEFAULTS = { everyRecords: 10_000, intervalSeconds: 300 } as const;

/** Settings of replicated mode, present only when `BULKHEAD_NATS_URL` is set. */
export interface ReplicationConfig {
  /** NATS server URLs the client may connect to (a cluster's seeds), e.g. nats://10.0.0.1:4222. */
  natsServers: string[];
  /** The JetStream stream holding the change log; every sidecar of one deployment names the same. */
  stream: string;
  /** How long reads are served from local state once NATS is unreachable, before Checks fail closed. */
  stalenessMs: number;
  /** Replicas of the stream when this sidecar creates it (3 on a three-node cluster). */
  replicas: number;
  /** How often this sidecar looks whether a snapshot is due (ADR 73); 0 or absent (tests) turns periodic snapshots off. */
  snapshotIntervalSeconds?: number;
}

/** Settings that hold credentials: a log line prints them as "[Redacted]" (src/log/logger.ts). */
export const SECRET_SETTINGS = ["callerTokens", "adminTokens", "syncTokens", "stripeApiKey", "stripeWebhookSecrets"] as const satisfies readonly (keyof Config)[];

/** Every credential value a config holds (and the API-key hash secret), for the log's last-resort scrubber. */
export function secretValues(config: Config, env: NodeJS.ProcessEnv): string[] {
  const values = SECRET_SETTINGS.flatMap((key) => config[key]);
  if (env.BULKHEAD_KEY_SECRET) values.push(env.BULKHEAD_KEY_SECRET);
  return values.filter((v) => v !== "");
}

export const REPLICATION_DEFAULTS = { stream: "BULKHEAD", stalenessMs: 5000, replicas: 1, snapshotIntervalSeconds: 600 } as const;

/** 1,000 a second on average per caller token, with a minute's worth as burst: only a runaway caller meets it. */
export const OFREP_DEFAULT_RATE_PER_MINUTE = 60_000;

export const DEFAULT_ADMIN_REASON_CODES = [
  "customer_request", "incident", "directory_sync", "onboarding", "offboarding", "billing_correction", "security", "maintenance",
] as const;

/** Environment variable -> config key. Flags of `bulkhead serve` use the same names in kebab-case. */
export const ENV_VARS = {
  BULKHEAD_GRPC_ADDR: "grpcAddr",
  BULKHEAD_HTTP_ADDR: "httpAddr",
  BULKHEAD_DB: "dbPath",
  BULKHEAD_POLICY_DIR: "policyDir",
  BULKHEAD_DEMO: "demo",
  BULKHEAD_CALLER_TOKENS: "callerTokens",
  BULKHEAD_STRIPE_WEBHOOK_SECRETS: "stripeWebhookSecrets",
  BULKHEAD_STRIPE_API_KEY: "stripeApiKey",
  BULKHEAD_STRIPE_API_URL: "stripeApiUrl",
  BULKHEAD_PAST_DUE_GRACE_DAYS: "pastDueGraceDays",
  BULKHEAD_ADMIN_TOKEN: "adminTokens",
  BULKHEAD_SYNC_TOKENS: "syncTokens",
  BULKHEAD_ADMIN_REASON_CODES: "adminReasonCodes",
  BULKHEAD_IMPERSONATION_MAX_TTL_SECONDS: "impersonationMaxTtlSeconds",
  BULKHEAD_ENVIRONMENT: "environment",
  BULKHEAD_OFREP_RATE_PER_MINUTE: "ofrepRatePerMinute",
  BULKHEAD_POLICY_WORKERS: "policyWorkers",
  BULKHEAD_POLICY_BUDGET_MS: "policyBudgetMs",
  BULKHEAD_NATS_URL: "replication.natsServers",
  BULKHEAD_NATS_STREAM: "replication.stream",
  BULKHEAD_NATS_STALENESS_MS: "replication.stalenessMs",
  BULKHEAD_NATS_REPLICAS: "replication.replicas",
  BULKHEAD_SNAPSHOT_INTERVAL_S: "replication.snapshotIntervalSeconds",
  BULKHEAD_AUTHZEN_DEFAULT_TENANT: "authzenDefaultTenant",
  BULKHEAD_AUTHZEN_RESOURCES: "authzenResources",
  BULKHEAD_LOG_LEVEL: "logLevel",
  BULKHEAD_DEPLOYMENT_SHA: "deploymentSha",
  BULKHEAD_DECISION_LOG_MAX_AGE_DAYS: "decisionLogRetention.maxAgeDays",
  BULKHEAD_DECISION_LOG_MAX_RECORDS: "decisionLogRetention.maxRecords",
  BULKHEAD_AUDIT_CHECKPOINT_KEY: "auditCheckpoints.keyFile",
  BULKHEAD_AUDIT_CHECKPOINT_DIR: "auditCheckpoints.dir",
  BULKHEAD_AUDIT_CHECKPOINT_EVERY_RECORDS: "auditCheckpoints.everyRecords",
  BULKHEAD_AUDIT_CHECKPOINT_INTERVAL_SECONDS: "auditCheckpoints.intervalSeconds",
  BULKHEAD_HEAP_MODE: "heapMode",
  BULKHEAD_DECISION_CACHE_MB: "decisionCacheMb",
  BULKHEAD_DECISION_LOG_FILE: "decisionSinks.file",
  BULKHEAD_DECISION_LOG_URL: "decisionSinks.url",
  BULKHEAD_DECISION_LOG_MASK: "decisionSinks.masks",
  BULKHEAD_DECISION_LOG_SINK_BUFFER: "decisionSinks.maxBuffered",
  BULKHEAD_OTLP_ENDPOINT: "tracing.endpoint",
  BULKHEAD_OTEL_SERVICE_NAME: "tracing.serviceName",
  BULKHEAD_CONSOLE: "console",
} as const;

/**
 * Variables read outside loadConfig (by the CLI, the key-secret loader, the
 * cluster primary). Every BULKHEAD_* variable is in ENV_VARS or here: any
 * other is refused as a typo (rejectUnknownVariables).
 */
export const OTHER_ENV_VARS = ["BULKHEAD_KEY_SECRET", "BULKHEAD_WORKERS", "BULKHEAD_ADMIN_TOKEN_FILE", "BULKHEAD_WORKER_OF", "BULKHEAD_CONFIG"] as const;

/**
 * A mistyped variable (BULKHEAD_CALLER_TOKEN for BULKHEAD_CALLER_TOKENS) was
 * silently ignored, and a sidecar the operator believed locked down started
 * without caller tokens. Unknown BULKHEAD_* names are an error, with the
 * nearest known name as a suggestion.
 */
export function rejectUnknownVariables(env: NodeJS.ProcessEnv): void {
  const known: readonly string[] = [...Object.keys(ENV_VARS), ...OTHER_ENV_VARS];
  for (const name of Object.keys(env)) {
    if (!name.startsWith("BULKHEAD_") || known.includes(name)) continue;
    // A known name the unknown one extends (BULKHEAD_DB_PATH) or is close to (BULKHEAD_CALLER_TOKEN).
    const nearest = known.find((k) => name.startsWith(`${k}_`)) ?? [...known].sort((a, b) => editDistance(name, a) - editDistance(name, b))[0]!;
    const hint = name.startsWith(`${nearest}_`) || editDistance(name, nearest) <= 4 ? `; did you mean ${nearest}?` : "";
    throw new ConfigError(`unknown environment variable ${name}${hint} (bulkhead serve --help lists them all)`);
  }
}

/** Levenshtein distance, for suggestions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

export class ConfigError extends UsageError {
  override readonly name = "ConfigError";
}

export const DEFAULTS = {
  grpcAddr: "127.0.0.1:50051",
  httpAddr: "127.0.0.1:8080",
  dbPath: "./data/bulkhead.db",
  policyDir: DEFAULT_POLICY_DIR,
} as const;

/** Flags win over environment variables, which win over defaults. */
export function loadConfig(env: NodeJS.ProcessEnv, flags: Partial<Record<string, string | boolean>> = {}): Config {
  rejectUnknownVariables(env);
  const pick = (flag: string, name: keyof typeof ENV_VARS): string | undefined => {
    const fromFlag = flags[flag];
    if (typeof fromFlag === "string") return fromFlag;
    if (fromFlag === true) return "1";
    return env[name] || undefined;
  };
  const config: Config = {
    grpcAddr: pick("grpc-addr", "BULKHEAD_GRPC_ADDR") ?? DEFAULTS.grpcAddr,
    httpAddr: pick("http-addr", "BULKHEAD_HTTP_ADDR") ?? DEFAULTS.httpAddr,
    dbPath: absolute(pick("db", "BULKHEAD_DB") ?? DEFAULTS.dbPath),
    policyDir: absolute(pick("policy-dir", "BULKHEAD_POLICY_DIR") ?? DEFAULTS.policyDir),
    demo: ["1", "true", "yes"].includes((pick("demo", "BULKHEAD_DEMO") ?? "").toLowerCase()),
    console: ["1", "true", "yes"].includes((pick("console", "BULKHEAD_CONSOLE") ?? "").toLowerCase()),
    callerTokens: list(pick("caller-tokens", "BULKHEAD_CALLER_TOKENS")),
    watchPolicies: flags["no-watch"] !== true,
    stripeWebhookSecrets: list(env.BULKHEAD_STRIPE_WEBHOOK_SECRETS),
    stripeApiKey: env.BULKHEAD_STRIPE_API_KEY ?? "",
    stripeApiUrl: env.BULKHEAD_STRIPE_API_URL ?? "",
    pastDueGraceDays: wholeNumber("BULKHEAD_PAST_DUE_GRACE_DAYS", env.BULKHEAD_PAST_DUE_GRACE_DAYS, 14, 0, 365),
    adminTokens: list(env.BULKHEAD_ADMIN_TOKEN),
    syncTokens: list(env.BULKHEAD_SYNC_TOKENS),
    adminReasonCodes: reasonCodes(env.BULKHEAD_ADMIN_REASON_CODES),
    impersonationMaxTtlSeconds: wholeNumber("BULKHEAD_IMPERSONATION_MAX_TTL_SECONDS", env.BULKHEAD_IMPERSONATION_MAX_TTL_SECONDS, 3600, 60, 86_400),
    environment: environmentName(env.BULKHEAD_ENVIRONMENT),
    ofrepRatePerMinute: wholeNumber("BULKHEAD_OFREP_RATE_PER_MINUTE", env.BULKHEAD_OFREP_RATE_PER_MINUTE, OFREP_DEFAULT_RATE_PER_MINUTE, 0, 60_000_000),
    policyWorkers: wholeNumber("BULKHEAD_POLICY_WORKERS", env.BULKHEAD_POLICY_WORKERS, EVALUATION_DEFAULTS.workers, 1, 16),
    policyBudgetMs: wholeNumber("BULKHEAD_POLICY_BUDGET_MS", env.BULKHEAD_POLICY_BUDGET_MS, EVALUATION_DEFAULTS.budgetMs, 10, 10_000),
    replication: replicationConfig(pick("nats-url", "BULKHEAD_NATS_URL"), env),
    authzenDefaultTenant: defaultTenant(env.BULKHEAD_AUTHZEN_DEFAULT_TENANT),
    authzenResources: env.BULKHEAD_AUTHZEN_RESOURCES ? absolute(env.BULKHEAD_AUTHZEN_RESOURCES) : undefined,
    logLevel: logLevel(pick("log-level", "BULKHEAD_LOG_LEVEL")),
    deploymentSha: deploymentSha(env.BULKHEAD_DEPLOYMENT_SHA),
    decisionLogRetention: {
      maxAgeDays: wholeNumber("BULKHEAD_DECISION_LOG_MAX_AGE_DAYS", env.BULKHEAD_DECISION_LOG_MAX_AGE_DAYS, 0, 0, 36_500),
      maxRecords: wholeNumber("BULKHEAD_DECISION_LOG_MAX_RECORDS", env.BULKHEAD_DECISION_LOG_MAX_RECORDS, 0, 0, 1e15 - 1),
    },
    auditCheckpoints: auditCheckpointConfig(env, absolute(pick("db", "BULKHEAD_DB") ?? DEFAULTS.dbPath)),
    heapMode: heapMode(pick("heap-mode", "BULKHEAD_HEAP_MODE")),
    decisionCacheMb: wholeNumber("BULKHEAD_DECISION_CACHE_MB", pick("decision-cache-mb", "BULKHEAD_DECISION_CACHE_MB"), DECISION_CACHE_MB, 0, 1024),
    decisionSinks: decisionSinkConfig(env),
    tracing: tracingConfig(pick("otlp-endpoint", "BULKHEAD_OTLP_ENDPOINT"), pick("otel-service-name", "BULKHEAD_OTEL_SERVICE_NAME")),
  };
  validateConfig(config);
  return config;
}

const list = (value: string | undefined): string[] =>
  (value ?? "").split(",").map((t) => t.trim()).filter(Boolean);

function heapMode(value: string | undefined): HeapMode {
  if (value === undefined || value === "") return "size";
  if (!(HEAP_MODES as readonly string[]).includes(value)) throw new ConfigError(`BULKHEAD_HEAP_MODE: '${value}' must be one of ${HEAP_MODES.join(", ")}`);
  return value as HeapMode;
}

/** A flag's environments are compared by name, so a typo must fail at start, not turn flags off. */
function environmentName(value: string | undefined): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^[a-z][a-z0-9_-]{0,63}$/.test(value)) throw new ConfigError(`BULKHEAD_ENVIRONMENT: '${value}' must be lower-case letters, digits, '-' or '_'`);
  return value;
}

function reasonCodes(value: string | undefined): string[] {
  const codes = list(value);
  if (codes.length === 0) return [...DEFAULT_ADMIN_REASON_CODES];
  for (const code of codes) {
    if (!/^[a-z][a-z0-9_]*$/.test(code)) throw new ConfigError(`BULKHEAD_ADMIN_REASON_CODES: '${code}' must be snake_case`);
  }
  return codes;
}

/**
 * A setting that is a whole number, written in plain decimal digits: Number()
 * alone would take "0x10" as 16, "1e3" as 1000 and " 7 " as 7, so a typo
 * could silently become a very different setting.
 */
export function wholeNumber(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}=${value} must be a whole number from ${min} to ${max} in decimal digits`);
  return n;
}

function replicationConfig(url: string | undefined, env: NodeJS.ProcessEnv): ReplicationConfig | undefined {
  if (url === undefined) {
    // A stream name without a URL means the operator thinks this sidecar is replicated: say it is not.
    for (const name of ["BULKHEAD_NATS_STREAM", "BULKHEAD_NATS_STALENESS_MS", "BULKHEAD_NATS_REPLICAS", "BULKHEAD_SNAPSHOT_INTERVAL_S"] as const) {
      if (env[name]) throw new ConfigError(`${name} is set but BULKHEAD_NATS_URL (--nats-url) is not; set both for replicated mode, or neither`);
    }
    return undefined;
  }
  return {
    natsServers: natsServers(url),
    stream: streamName(env.BULKHEAD_NATS_STREAM || REPLICATION_DEFAULTS.stream),
    stalenessMs: wholeNumber("BULKHEAD_NATS_STALENESS_MS", env.BULKHEAD_NATS_STALENESS_MS, REPLICATION_DEFAULTS.stalenessMs, 100, 600_000),
    replicas: wholeNumber("BULKHEAD_NATS_REPLICAS", env.BULKHEAD_NATS_REPLICAS, REPLICATION_DEFAULTS.replicas, 1, 5),
    snapshotIntervalSeconds: wholeNumber("BULKHEAD_SNAPSHOT_INTERVAL_S", env.BULKHEAD_SNAPSHOT_INTERVAL_S, REPLICATION_DEFAULTS.snapshotIntervalSeconds, 0, 86_400),
  };
}

/** `nats://host:port` (or tls://), comma-separated for a cluster's seeds; a bare host:port gets nats://. */
export function natsServers(value: string): string[] {
  const servers = list(value);
  if (servers.length === 0) throw new ConfigError(`BULKHEAD_NATS_URL='${value}' names no server`);
  return servers.map((server) => {
    const withScheme = /^[a-z]+:\/\//i.test(server) ? server : `nats://${server}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new ConfigError(`BULKHEAD_NATS_URL: '${server}' is not a URL (expected nats://host:port)`);
    }
    if (!["nats:", "tls:"].includes(url.protocol)) throw new ConfigError(`BULKHEAD_NATS_URL: '${server}' must use nats:// or tls://`);
    if (!url.hostname) throw new ConfigError(`BULKHEAD_NATS_URL: '${server}' names no host`);
    return withScheme;
  });
}

/** JetStream stream names may not hold whitespace, '.', '*', '>', path separators or be longer than 255. */
export function streamName(name: string): string {
  if (!/^[A-Za-z0-9_-]{1,255}$/.test(name)) {
    throw new ConfigError(`BULKHEAD_NATS_STREAM='${name}' must be 1 to 255 letters, digits, '_' or '-'`);
  }
  return name;
}

/** Automatic checkpoints need a key; the other settings without one mean the operator expects checkpoints that will not come. */
function decisionSinkConfig(env: NodeJS.ProcessEnv): DecisionSinkConfig | undefined {
  const file = env.BULKHEAD_DECISION_LOG_FILE || undefined;
  const url = env.BULKHEAD_DECISION_LOG_URL || undefined;
  if (!file && !url) {
    for (const name of ["BULKHEAD_DECISION_LOG_MASK", "BULKHEAD_DECISION_LOG_SINK_BUFFER"] as const) {
      if (env[name]) throw new ConfigError(`${name} is set but neither BULKHEAD_DECISION_LOG_FILE nor BULKHEAD_DECISION_LOG_URL is: it applies to a sink`);
    }
    return undefined;
  }
  if (url) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`BULKHEAD_DECISION_LOG_URL: '${url}' is not a URL (for example https://collector.internal/logs)`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new ConfigError(`BULKHEAD_DECISION_LOG_URL: '${url}' must be http:// or https://`);
    // fetch refuses such a URL, so the sink could never deliver; and the URL is printed in logs.
    if (parsed.username || parsed.password) throw new ConfigError("BULKHEAD_DECISION_LOG_URL: credentials in the URL are refused (fetch cannot send them, and they would be logged)");
  }
  const masks = list(env.BULKHEAD_DECISION_LOG_MASK);
  for (const mask of masks) {
    if (!MASKABLE.test(mask)) throw new ConfigError(`BULKHEAD_DECISION_LOG_MASK: '${mask}' must be a JSON pointer under /input or /bulkhead, such as /input/principal/actor_id`);
  }
  return {
    file: file === "-" ? "-" : file && absolute(file), url, masks,
    maxBuffered: wholeNumber("BULKHEAD_DECISION_LOG_SINK_BUFFER", env.BULKHEAD_DECISION_LOG_SINK_BUFFER, 10_000, 1, 10_000_000),
  };
}

function auditCheckpointConfig(env: NodeJS.ProcessEnv, dbPath: string): AuditCheckpointConfig | undefined {
  if (!env.BULKHEAD_AUDIT_CHECKPOINT_KEY) {
    for (const name of ["BULKHEAD_AUDIT_CHECKPOINT_DIR", "BULKHEAD_AUDIT_CHECKPOINT_EVERY_RECORDS", "BULKHEAD_AUDIT_CHECKPOINT_INTERVAL_SECONDS"] as const) {
      if (env[name]) throw new ConfigError(`${name} is set but BULKHEAD_AUDIT_CHECKPOINT_KEY is not; checkpoints are only written when they can be signed`);
    }
    return undefined;
  }
  return {
    keyFile: absolute(env.BULKHEAD_AUDIT_CHECKPOINT_KEY),
    dir: absolute(env.BULKHEAD_AUDIT_CHECKPOINT_DIR || `${dbPath === ":memory:" ? "." : dbPath}.checkpoints`),
    everyRecords: wholeNumber("BULKHEAD_AUDIT_CHECKPOINT_EVERY_RECORDS", env.BULKHEAD_AUDIT_CHECKPOINT_EVERY_RECORDS, AUDIT_CHECKPOINT_DEFAULTS.everyRecords, 1, 1_000_000_000),
    intervalSeconds: wholeNumber("BULKHEAD_AUDIT_CHECKPOINT_INTERVAL_SECONDS", env.BULKHEAD_AUDIT_CHECKPOINT_INTERVAL_SECONDS, AUDIT_CHECKPOINT_DEFAULTS.intervalSeconds, 1, 86_400),
  };
}

export const DEFAULT_OTEL_SERVICE_NAME = "bulkhead";

/** A service name without an endpoint means the operator expects traces that will not come: say so. */
function tracingConfig(endpoint: string | undefined, serviceName: string | undefined): TracingConfig | undefined {
  if (endpoint === undefined) {
    if (serviceName !== undefined) throw new ConfigError("BULKHEAD_OTEL_SERVICE_NAME is set but BULKHEAD_OTLP_ENDPOINT is not; traces are only exported to an endpoint");
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(`BULKHEAD_OTLP_ENDPOINT: '${endpoint}' is not a URL (expected e.g. http://collector:4318/v1/traces)`);
  }
  if (!["http:", "https:"].includes(url.protocol)) throw new ConfigError(`BULKHEAD_OTLP_ENDPOINT: '${endpoint}' must use http:// or https:// (OTLP over HTTP)`);
  if (url.username || url.password) throw new ConfigError("BULKHEAD_OTLP_ENDPOINT: credentials in the URL are refused (they would be exported in error messages)");
  const name = serviceName ?? DEFAULT_OTEL_SERVICE_NAME;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) throw new ConfigError(`BULKHEAD_OTEL_SERVICE_NAME: '${name}' must be 1 to 128 letters, digits, '.', '_' or '-'`);
  return { endpoint, serviceName: name };
}

function defaultTenant(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    checkId(value, "BULKHEAD_AUTHZEN_DEFAULT_TENANT");
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  return value;
}

function logLevel(value: string | undefined): LogLevel {
  if (value === undefined || value === "") return "info";
  const level = LOG_LEVELS.find((l) => l === value.toLowerCase());
  if (!level) throw new ConfigError(`BULKHEAD_LOG_LEVEL (--log-level): '${value}' must be one of ${LOG_LEVELS.join(", ")}`);
  return level;
}

/** Printed on every log line: a sha or tag, never free text that could break a query or forge a field. */
function deploymentSha(value: string | undefined): string | undefined {
  if (!value) return undefined;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) throw new ConfigError(`BULKHEAD_DEPLOYMENT_SHA='${value}' must be 1 to 64 letters, digits, '.', '_' or '-' (a git sha or release tag)`);
  return value;
}

function absolute(path: string): string {
  return path === ":memory:" || isAbsolute(path) ? path : resolve(path);
}

/** Refuses to expose an unauthenticated decision API beyond this machine. */
export function validateConfig(config: Config): void {
  for (const [name, addr] of [
    ["BULKHEAD_GRPC_ADDR", config.grpcAddr],
    ["BULKHEAD_HTTP_ADDR", config.httpAddr],
  ] as const) {
    const host = hostOf(addr, name);
    if (!isLoopback(host) && config.callerTokens.length === 0) {
      throw new ConfigError(
        `${name}=${addr} is not a loopback address and BULKHEAD_CALLER_TOKENS is empty; ` +
          `set caller tokens (comma-separated) before exposing bulkhead beyond this machine`,
      );
    }
  }
}

function hostOf(addr: string, name: string): string {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(addr);
  if (!match || Number(match[2]) > 65535) throw new ConfigError(`${name}=${addr} must be host:port`);
  return match[1]!.replace(/^\[|\]$/g, "");
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
