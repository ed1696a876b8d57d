import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { hostname } from "node:os";
import { PACKAGE_VERSION } from "./paths.js";
import { createDecisionSinks } from "./audit/decision-sinks.js";
import { queryDecisions, type DecisionFilter } from "./audit/decision-query.js";
import type { FastifyInstance } from "fastify";
import type { Server } from "@grpc/grpc-js";
import { DecisionLog, journalPathFor } from "./audit/decision-log.js";
import { systemClock, type Clock } from "./clock.js";
import { ConfigError, DECISION_CACHE_MB, type Config } from "./config.js";
import { ContextResolver } from "./context/context-resolver.js";
import { StoreFileGuard } from "./store/store-file-guard.js";
import { WriteLockBackoff } from "./store/write-lock-backoff.js";
import { Decider } from "./decision/decider.js";
import { DecisionCache } from "./decision/decision-cache.js";
import { seedDemoIfEmpty } from "./demo/demo-dataset.js";
import { DEFAULT_PAST_DUE_GRACE_DAYS } from "./billing/billing-access.js";
import { BillingProjector } from "./billing/billing-projector.js";
import { BillingCommands } from "./billing/billing-commands.js";
import { BillingAdmin } from "./billing/billing-admin.js";
import { stripeClient } from "./billing/stripe-webhook.js";
import { registerStripeWebhook } from "./server/http/stripe-webhook-route.js";
import { registerOfrep } from "./server/http/ofrep-route.js";
import { registerConsole } from "./console/register-console.js";
import { registerAuthzen } from "./server/http/authzen/authzen-route.js";
import { SearchableResources } from "./server/http/authzen/searchable-resources.js";
import { CallerAuth } from "./server/grpc/call-guard.js";
import { ApiKeyStore } from "./identity/api-keys.js";
import { AdminAudit } from "./audit/admin-audit.js";
import { AuditedWriter } from "./audit/audited-write.js";
import { DecisionAccess } from "./audit/decision-access.js";
import { AuditAdmin } from "./audit/audit-admin.js";
import { createAuditJobs, type AuditJobs } from "./audit/audit-jobs.js";
import { DirectoryAdmin } from "./directory/directory-admin.js";
import { TenantAdmin } from "./directory/tenant-admin.js";
import { CommercialAdmin } from "./entitlements/commercial-admin.js";
import { readEntitlementReport } from "./entitlements/entitlement-report.js";
import { AccessAdmin } from "./identity/access-admin.js";
import { AdminAuth } from "./identity/admin-auth.js";
import { Approvals } from "./identity/approvals.js";
import { BreakGlassTrail } from "./identity/break-glass.js";
import { roleMay, type AdminCapability } from "./identity/staff-roles.js";
import { loadAdminTokens } from "./identity/admin-token.js";
import { ChangeFeed } from "./store/change-feed.js";
import { keySecretFingerprint, loadKeySecret } from "./identity/key-secret.js";
import { KeyRateLimiter } from "./identity/rate-limiter.js";
import { PolicyManager } from "./engine/policy-manager.js";
import type { PolicySource } from "./engine/policy-source.js";
import { ulidGenerator, type IdGenerator } from "./ids.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { startTracing, type Tracing } from "./telemetry/tracing.js";
import { bindGrpc, createGrpcServer, SERVICE_NAMES } from "./server/grpc/grpc-server.js";
import { FlagEvaluation } from "./flags/flag-evaluation.js";
import { FlagAdmin } from "./flags/flag-admin.js";
import { FlagUsage } from "./flags/flag-usage.js";
import { createHttpServer } from "./server/http/http-server.js";
import { ChangeTracker } from "./store/change-tracker.js";
import { openDatabase, requireIntact, type Db } from "./store/database.js";
import { readRevision, RevisionWriter } from "./store/revision-writer.js";
import { createSqliteStores, type Stores } from "./store/stores.js";
import { Outbox } from "./events/outbox.js";
import { Metering } from "./usage/metering.js";
import { UsageCommands } from "./usage/usage-commands.js";
import { LocalCommandWriter, type CommandWriter } from "./store/command-writer.js";
import { CommandRegistry } from "./store/store-command.js";
import { seedCommand } from "./demo/seed-command.js";
import { DEMO_DATASET } from "./demo/demo-dataset.js";
import { BulkheadError } from "./errors.js";
import { ReplicatedLog } from "./replication/replicated-log.js";
import { bootstrapFromSnapshot } from "./replication/snapshot-bootstrap.js";
import { copyForSnapshot, listSnapshots, openSnapshotStore, uploadSnapshot, type SnapshotMeta } from "./replication/snapshots.js";
import { SnapshotSchedule } from "./replication/snapshot-schedule.js";
import { FleetPublisher, fleetKey, memberOf, readFleet, type FleetView, type SidecarStatus } from "./replication/fleet-status.js";
import { loggerOverMessages, messageLog, type Logger } from "./log/logger.js";
import { CheckCharges } from "./decision/check-charge.js";

export interface Runtime {
  clock: Clock;
  ids: IdGenerator;
  log: (message: string) => void;
}

/** What the sidecar may be given: a structured logger (serve's, JSON on stdout) or a message function (tests, embedders). */
export interface SidecarRuntime extends Runtime {
  logger: Logger;
}

/** Everything a running sidecar is made of; tests reach in through it. */
export interface Bulkhead {
  config: Config;
  db: Db;
  stores: Stores;
  writer: RevisionWriter;
  tracker: ChangeTracker;
  policies: PolicyManager;
  resolver: ContextResolver;
  decider: Decider;
  metering: Metering;
  /** Every command kind this sidecar can apply (ADR 42). */
  commands: CommandRegistry;
  /** Replicated mode's change log; undefined single-node. */
  replication: ReplicatedLog | undefined;
  outbox: Outbox;
  projector: BillingProjector;
  /** Staff billing operations as commands (ADR 78). */
  billingAdmin: BillingAdmin;
  apiKeys: ApiKeyStore;
  decisionLog: DecisionLog;
  /** Decision-log retention and automatic signed checkpoints (ADRs 57, 58). */
  auditJobs: AuditJobs;
  fileGuard: StoreFileGuard;
  metrics: Metrics;
  /** TRACING_OFF unless BULKHEAD_OTLP_ENDPOINT is set. */
  tracing: Tracing;
  grpc: Server;
  http: FastifyInstance;
  /** Replicated mode: stores a snapshot of this file at its applied revision (ADR 73). */
  writeSnapshot(): Promise<SnapshotMeta>;
  /** Replicated mode: the periodic snapshot writer (BULKHEAD_SNAPSHOT_INTERVAL_S); tick() is one look. */
  snapshots: SnapshotSchedule | undefined;
  /** Replicated mode: one report to `<stream>_fleet` (every FLEET_PUBLISH_MS on its own; tests call it); single-node: nothing. */
  publishFleetStatus(): Promise<void>;
  /** One run of the usage sweeper (every SWEEP_PERIOD_MS on its own; tests call it). */
  sweepUsage(): Promise<void>;
  /** One run of the break-glass expiry (with the usage sweeper on its own; tests call it): how many grants got their break_glass.expired row. */
  expireBreakGlass(): Promise<number>;
  /** Binds both servers; resolves with the bound ports (port 0 picks a free one). */
  listen(): Promise<{ grpcPort: number; httpPort: number }>;
  /** Stops accepting calls, flushes the decision log, closes the store. */
  close(): Promise<void>;
}

/**
 * The composition root: stores, then services, then servers. Nothing else
 * constructs collaborators; time, ids and logging come in through `runtime`.
 */
export async function createBulkhead(config: Config, runtime: Partial<SidecarRuntime> = {}): Promise<Bulkhead> {
  const clock = runtime.clock ?? systemClock;
  const ids = runtime.ids ?? ulidGenerator(clock);
  const fallback = (message: string) => console.error(`bulkhead: ${message}`);
  const logger = runtime.logger ?? loggerOverMessages(runtime.log ?? fallback);
  const log = runtime.log ?? (runtime.logger ? messageLog(runtime.logger) : fallback);
  // First: it only imports the SDK (when configured), so nothing needs closing if it fails.
  const tracing = await startTracing(config.tracing);

  // Replicated mode: an empty file starts from the newest snapshot (ADR 73).
  if (config.replication) await bootstrapFromSnapshot(config.replication, config.dbPath, log);
  const db = openDatabase(config.dbPath);
  // Replicated mode: the file is a view of the change log, and a write is
  // acknowledged once JetStream has stored it on its replicas, so a commit
  // lost to a power cut is applied again from the stream. fsyncing every
  // applied entry (ADR 72's FULL) would only slow a catch-up of thousands.
  if (config.replication) db.pragma("synchronous = NORMAL");
  requireIntactOrClose(db);
  const policies = new PolicyManager({
    dir: config.policyDir,
    watch: config.watchPolicies,
    log,
    evaluation: { workers: config.policyWorkers, budgetMs: config.policyBudgetMs },
    ...(config.policyWatchdog && { watchdog: config.policyWatchdog }),
  });
  let replication: ReplicatedLog | undefined;
  const core = createDecisionCore(db, policies, { clock, ids, log }, {
    pastDueGraceDays: config.pastDueGraceDays,
    environment: config.environment,
    freshness: { require: () => replication?.requireFresh() },
    decisionCacheBytes: (config.decisionCacheMb ?? DECISION_CACHE_MB) * 1024 * 1024,
  });
  const { stores, writer, tracker, decisionLog, outbox, metering, resolver, decider, apiKeys, keySecret, fileGuard, writeLock, flagUsage } = core;
  const auditJobs = closeOnThrow(db, fileGuard, () => createAuditJobs(config, { db, clock, guard: writeLock, log }));
  policies.onSwap(() => core.forgetCaches());
  // Kinds are registered before the log is opened: catching up applies them.
  const registry = new CommandRegistry();
  const local = new LocalCommandWriter(writer, registry, clock);
  const commands: CommandWriter = {
    run: (kind, body, options) => (replication ?? local).run(kind, body, options),
    syncWithLog: () => (replication ?? local).syncWithLog(),
  };
  const seedKind = registry.register(seedCommand(writer, stores));
  const usage = new UsageCommands({ metering, commands, registry, usage: stores.usage, clock });
  const adminAudit = new AdminAudit(db);
  const audited = new AuditedWriter(writer, adminAudit);
  const staffMay = (actor: string, capability: AdminCapability) => {
    const member = actor.startsWith("staff:") ? stores.staff.get(actor.slice(6)) : undefined;
    return member?.status === "active" && roleMay(member.role, capability);
  };
  const breakGlass = new BreakGlassTrail(db, adminAudit, logger);
  const approvals = new Approvals(db, (actor) => staffMay(actor, "approvals"), breakGlass.hooks((actor) => staffMay(actor, "break_glass")));
  const projector = new BillingProjector({ writer, billing: stores.billing, directory: stores.directory, entitlements: stores.entitlements });
  const billingCommands = new BillingCommands({ projector, commands, registry });
  const billingAdmin = new BillingAdmin({
    audited, writer, billing: stores.billing, directory: stores.directory, projector, commands, registry,
    ...(config.stripeApiKey && { stripe: stripeClient(config.stripeApiKey, config.stripeApiUrl) }),
  });
  const directoryAdmin = new DirectoryAdmin({ audited, ...stores, roles: policies, approvals, commands, registry });
  const checkCharges = new CheckCharges({ metering, writer, usage: stores.usage, commands, registry });
  const flagAdmin = new FlagAdmin({ audited, flags: stores.flags, approvals, usage: flagUsage, commands, registry });
  const tenantAdmin = new TenantAdmin({ audited, ...stores, apiKeys, roles: policies, commands, registry });
  const commercialAdmin = new CommercialAdmin({ audited, ...stores, approvals, commands, registry, clock });
  const accessAdmin = new AccessAdmin({
    audited, ...stores, roles: policies, apiKeys, approvals, breakGlass, keySecret, maxImpersonationSeconds: config.impersonationMaxTtlSeconds,
    commands, registry, now: () => clock.now(),
  });
  // Flushed first, so a caller (AdminService or the console) sees the decisions this process answered just before.
  const decisions = (filter: DecisionFilter, page: { size: number; token: string }) => {
    decisionLog.flush();
    return queryDecisions(db, filter, page);
  };
  const decisionAccess = new DecisionAccess({ audited, commands, registry, query: decisions, decider });
  const audit = new AuditAdmin({ db, audited, directory: stores.directory, flushDecisions: () => decisionLog.flush(), commands, registry });
  if (config.replication) {
    decider.chargeThroughLog(checkCharges);
    replication = await openReplication(config, { db, writer, registry, clock, log, keySecret }).catch((error: unknown) => {
      fileGuard.stop();
      db.close();
      throw error;
    });
    if (config.demo) {
      const seeded = await replication.runIfLogEmpty(seedKind, DEMO_DATASET);
      log(seeded ? `seeded the demo dataset into stream ${config.replication.stream}` : `stream ${config.replication.stream} has data: joined without seeding`);
    }
  } else {
    if (config.demo && seedDemoIfEmpty(db, writer, stores)) log(`seeded the demo dataset into ${config.dbPath}`);
  }
  await policies.start();
  // A sink file that cannot be opened fails the start without leaving the store open.
  const sinks = closeOnThrow(db, fileGuard, () => createDecisionSinks(config.decisionSinks, { id: `${hostname()}:${process.pid}`, version: PACKAGE_VERSION }, log));
  if (sinks.length > 0) decisionLog.onWritten((records) => sinks.forEach((sink) => sink.send(records)));
  const metrics = createMetrics({ policies, decisionLog, tracker, contextCache: resolver, sinks, breakGlass, ...(core.decisionCache && { decisionCache: core.decisionCache }), ...(replication && { replication }) });
  core.attachMetrics(metrics);

  // Built once: AdminService and the console call the same use-case objects.
  const admin = {
    tenants: tenantAdmin,
    directory: directoryAdmin,
    commercial: commercialAdmin,
    access: accessAdmin,
    flags: flagAdmin,
    billing: billingAdmin,
    auth: new AdminAuth(loadAdminTokens(config.dbPath, config.adminTokens.join(","), log), config.syncTokens, stores.staff, keySecret),
  };
  const flagEvaluation = new FlagEvaluation({ flags: stores.flags, subjects: resolver, usage: flagUsage });
  flagUsage.start();
  const { server: grpc, health } = createGrpcServer({
    decider,
    metrics,
    logger,
    tracing,
    callerTokens: config.callerTokens,
    entitlements: { db, stores, metering, usage, outbox, decider, clock },
    flags: { flags: flagEvaluation, decider },
    admin: {
      ...admin,
      changes: new ChangeFeed(db),
      decisionAccess,
      reasonCodes: config.adminReasonCodes,
      now: () => clock.now(),
      revision: () => readRevision(db),
    },
  });
  // Lapsed reservations stop counting at their expiry by themselves; the
  // sweeper only keeps the tables small. unref: it never holds the process up.
  // Replicated mode: one sweep command per period for the whole cluster (ADR 61).
  const sweepUsage = async () => {
    if (!replication) {
      writer.write((tx) => stores.usage.sweep(tx, tx.now));
      return;
    }
    await usage.sweep(SWEEP_PERIOD_MS);
  };
  const sweeper = setInterval(() => {
    sweepUsage().catch((error: unknown) => log(`usage sweeper failed: ${(error as Error).message}`));
    // Break-glass grants past their TTL get their break_glass.expired row (ADR 54); opening a grant records them too.
    accessAdmin.expireBreakGlass().catch((error: unknown) => log(`break-glass expiry failed: ${(error as Error).message}`));
  }, SWEEP_PERIOD_MS).unref();
  auditJobs.start();
  let accepting = true;
  const http = createHttpServer({
    policies, decisionLog, metrics, accepting: () => accepting && fileGuard.writable, store: fileGuard, writeLock,
    ...(replication && { replication: () => replication!.readiness.problem }),
  });
  const ofrepRateLimit = { perMinute: config.ofrepRatePerMinute, limiter: new KeyRateLimiter(), clock, tokensRequired: config.callerTokens.length > 0 };
  await registerOfrep(http, { flags: flagEvaluation, auth: new CallerAuth(config.callerTokens), rateLimit: ofrepRateLimit, metrics, log });
  await registerAuthzen(http, {
    decider,
    directory: stores.directory,
    actions: () => Object.keys(policies.policy.data.bulkhead.actions),
    resources: config.authzenResources ? SearchableResources.fromFile(config.authzenResources) : new SearchableResources(),
    tenancy: { defaultTenant: config.authzenDefaultTenant },
    auth: new CallerAuth(config.callerTokens),
    log,
  });
  await registerStripeWebhook(http, {
    billing: billingCommands,
    secrets: config.stripeWebhookSecrets,
    clock,
    metrics,
    ...(config.stripeApiKey && { stripe: stripeClient(config.stripeApiKey, config.stripeApiUrl) }),
    logger,
    tracing,
  });

  // The fleet page (ADR 90): single-node, this sidecar alone; replicated, what every sidecar publishes to `<stream>_fleet`.
  const sidecarId = fleetKey(`${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`);
  const fleetSelf = (): SidecarStatus => ({
    id: sidecarId, host: hostname(), policyRevision: policies.policy.revision, appliedSeq: replication?.revision ?? readRevision(db), updatedAt: clock.now(),
  });
  const fleetPublisher = replication && config.replication
    ? new FleetPublisher({ connection: replication.connection, stream: config.replication.stream, replicas: config.replication.replicas, self: fleetSelf, log })
    : undefined;
  fleetPublisher?.start();
  const fleet = async (): Promise<FleetView> => {
    if (replication && config.replication) return readFleet(replication.connection, config.replication.stream, config.replication.replicas, clock);
    const self = fleetSelf();
    return { mode: "single-node", lastSeq: self.appliedSeq, sidecars: [memberOf(self, self.appliedSeq, self.updatedAt)] };
  };

  if (config.console) {
    await registerConsole(http, { tenants: admin.tenants, access: admin.access, auth: admin.auth, decisionAccess, fleet, flags: admin.flags, audit, reasonCodes: config.adminReasonCodes, clock,
      billing: admin.billing, entitlements: (tenantId, now) => readEntitlementReport({ db, ...stores }, tenantId, now),
    });
  }

  /** Replicated mode: a snapshot of this file at its applied revision, uploaded to the stream's bucket (ADR 73). */
  const writeSnapshot = async (): Promise<SnapshotMeta> => {
    if (!replication || !config.replication) throw new BulkheadError("REPLICATION_UNAVAILABLE", "snapshots exist only in replicated mode (BULKHEAD_NATS_URL)");
    const path = `${config.dbPath}.snapshot-out`;
    const meta = copyForSnapshot(db, path);
    try {
      const stored = await uploadSnapshot(replication.connection, config.replication.stream, path, meta, config.replication.replicas, { log });
      log(`wrote snapshot of stream ${config.replication.stream} at revision ${stored.revision}`);
      return stored;
    } finally {
      rmSync(path, { force: true });
    }
  };
  const snapshots = replication && config.replication
    ? new SnapshotSchedule({
        newestRevision: async () => {
          const store = await openSnapshotStore(replication!.connection, config.replication!.stream);
          const newest = store ? (await listSnapshots(store))[0] : undefined;
          return newest ? Number(newest.metadata!.revision) : null;
        },
        appliedRevision: () => replication!.revision,
        write: writeSnapshot,
        log,
      })
    : undefined;
  const snapshotEvery = config.replication?.snapshotIntervalSeconds ?? 0;
  if (snapshots && snapshotEvery > 0) snapshots.start(snapshotEvery * 1000);

  const setServing = (serving: boolean) => {
    for (const name of ["", ...SERVICE_NAMES]) health.setStatus(name, serving ? "SERVING" : "NOT_SERVING");
  };

  return {
    config, db, stores, writer, tracker, policies, resolver, decider, metering, commands: registry, replication, outbox, projector, billingAdmin, apiKeys, decisionLog, auditJobs, fileGuard, metrics, tracing, grpc, http, sweepUsage,
    expireBreakGlass: () => accessAdmin.expireBreakGlass(),
    writeSnapshot,
    snapshots,
    publishFleetStatus: async () => fleetPublisher?.publish(),
    async listen() {
      const grpcPort = await bindGrpc(grpc, config.grpcAddr);
      const [host] = splitHostPort(config.httpAddr);
      await http.listen({ host, port: Number(splitHostPort(config.httpAddr)[1]) });
      const address = http.server.address();
      // Replicated mode: NOT_SERVING until caught up, and again if the applier stops.
      const log = replication;
      setServing(log ? log.readiness.ready : true);
      log?.onReadinessChange(() => setServing(accepting && log.readiness.ready));
      return { grpcPort, httpPort: typeof address === "object" && address ? address.port : 0 };
    },
    async close() {
      // Not ready at once, so load balancers stop sending while calls drain.
      accepting = false;
      setServing(false);
      clearInterval(sweeper);
      policies.stop();
      if ((await drainGrpc(grpc, DRAIN_DEADLINE_MS)) === "forced") {
        log(`calls still open after the ${DRAIN_DEADLINE_MS / 1000} s drain deadline (streams) were cancelled`);
      }
      // After the drain: calls still being answered need the workers.
      await policies.close();
      await http.close();
      fileGuard.stop();
      await snapshots?.stop();
      fleetPublisher?.stop();
      await replication?.close();
      flagUsage.stop();
      decisionLog.close();
      // After the last flush, so the sinks get the last records too; bounded, an endpoint that is down cannot hold the exit.
      await Promise.all(sinks.map((sink) => sink.close()));
      auditJobs.stop();
      db.close();
      // Last: spans of the calls drained above are exported before the process goes.
      await tracing.shutdown();
    },
  };
}

/**
 * How long a shutdown waits for open calls before cancelling them. Unary
 * calls finish well within it; a stream (CheckStream, WatchChanges,
 * WatchEvents) has no natural end, and without a deadline SIGTERM never
 * finished while one was open.
 */
export const DRAIN_DEADLINE_MS = 5_000;

/** How often the usage sweeper runs; in replicated mode also the period one sweep command covers. */
export const SWEEP_PERIOD_MS = 60_000;

/** Stops taking calls, waits for open ones up to the deadline, then cancels what is left. */
function drainGrpc(server: Server, deadlineMs: number): Promise<"drained" | "forced"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve("forced");
    }, deadlineMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve("drained");
    });
  });
}

export interface DecisionCore {
  stores: Stores;
  /** Whether the database file is still the one opened; decisions and writes fail once it is not. */
  fileGuard: StoreFileGuard;
  /** Refuses writes with STORE_BUSY while another process holds the write lock. */
  writeLock: WriteLockBackoff;
  apiKeys: ApiKeyStore;
  /** The server secret API-key and staff-token hashes are keyed with. */
  keySecret: Buffer;
  writer: RevisionWriter;
  tracker: ChangeTracker;
  decisionLog: DecisionLog;
  /** Last-evaluated times of flags, flushed in batches; the owner starts and stops it (ADR 52). */
  flagUsage: FlagUsage;
  outbox: Outbox;
  metering: Metering;
  resolver: ContextResolver;
  /** Policy results of non-consuming Checks (ADR 68); absent when turned off. */
  decisionCache: DecisionCache | undefined;
  decider: Decider;
  attachMetrics(metrics: Metrics): void;
  /** Drops the context and decision caches: called on a policy swap, whose revision no entry can match again. */
  forgetCaches(): void;
}

/**
 * Everything that decides, over one database and one policy source, without
 * servers: the sidecar wraps it in gRPC/HTTP, xtest and policy diff use it as is.
 */
export function createDecisionCore(
  db: Db,
  policies: PolicySource,
  runtime: Runtime,
  options: {
    boundaryGuard?: boolean; pastDueGraceDays?: number; environment?: string | undefined; keySecret?: Buffer; contextCacheBytes?: number;
    /** Byte budget of the decision cache (default DECISION_CACHE_MB); 0 turns it off. */
    decisionCacheBytes?: number;
    /** Throws when local state may no longer be served (replicated mode's staleness bound); checked before every decision. */
    freshness?: { require(): void };
  } = {},
): DecisionCore {
  const { clock, ids, log } = runtime;
  const stores = createSqliteStores(db);
  const fileGuard = new StoreFileGuard(db.name, log);
  const writeLock = new WriteLockBackoff(fileGuard, log);
  const writer = new RevisionWriter(db, clock, writeLock);
  const freshness = options.freshness;
  const tracker = new ChangeTracker(db, freshness ? { require: () => { fileGuard.require(); freshness.require(); } } : fileGuard);
  writer.onCommit((changes, revision) => tracker.observe(changes, revision));
  const decisionLog = new DecisionLog(db, { journal: journalPathFor(db.name), guard: writeLock, log });
  const flagUsage = new FlagUsage({ flags: stores.flags, clock, guard: writeLock, log });
  const outbox = new Outbox(db);
  const metering = new Metering({ writer, ...stores, outbox, clock });
  const pastDueGraceDays = options.pastDueGraceDays ?? DEFAULT_PAST_DUE_GRACE_DAYS;
  const keySecret = options.keySecret ?? loadKeySecret(db.name, process.env.BULKHEAD_KEY_SECRET);
  const apiKeys = new ApiKeyStore(db, keySecret);
  const resolver = new ContextResolver({
    db, ...stores, pastDueGraceDays, tracker, roles: policies, clock,
    ...(options.environment !== undefined && { environment: options.environment }),
    ...(options.contextCacheBytes !== undefined && { cacheBytes: options.contextCacheBytes }),
  });
  const decisionCacheBytes = options.decisionCacheBytes ?? DECISION_CACHE_MB * 1024 * 1024;
  const decisionCache = decisionCacheBytes > 0 ? new DecisionCache({ clock, maxBytes: decisionCacheBytes }) : undefined;
  const deciderDeps = {
    resolver, policies, tracker, decisionLog, writer, usage: stores.usage, metering, ids, clock,
    apiKeys, rateLimiter: new KeyRateLimiter(), boundaryGuard: options.boundaryGuard, flagUsage,
    ...(decisionCache && { decisionCache }),
  };
  const decider = new Decider(deciderDeps);
  return {
    stores, writer, tracker, decisionLog, flagUsage, outbox, metering, resolver, decisionCache, decider, apiKeys, keySecret, fileGuard, writeLock,
    attachMetrics: (metrics) => decider.attachMetrics(metrics),
    forgetCaches: () => {
      resolver.forgetAll();
      decisionCache?.forgetAll();
    },
  };
}

/**
 * What must happen once before several processes open the store (`serve
 * --workers`): migrations, the demo seed, and the admin-token and key-secret
 * files beside the database, so workers never race to create them.
 */
export function prepareStore(config: Config, runtime: Pick<Runtime, "clock" | "log">): void {
  refuseReplicatedMode(config);
  const db = openDatabase(config.dbPath);
  try {
    requireIntact(db);
    if (config.demo && seedDemoIfEmpty(db, new RevisionWriter(db, runtime.clock), createSqliteStores(db))) {
      runtime.log(`seeded the demo dataset into ${config.dbPath}`);
    }
    loadAdminTokens(config.dbPath, config.adminTokens.join(","), runtime.log);
    loadKeySecret(db.name, process.env.BULKHEAD_KEY_SECRET);
  } finally {
    db.close();
  }
}

/** Metering alone over a database, for tools and second processes (bench, race tests). */
export function meteringFor(db: Db, clock: Clock): Metering {
  return new Metering({ writer: new RevisionWriter(db, clock), ...createSqliteStores(db), outbox: new Outbox(db), clock });
}

/** A start step that may fail on configuration (a bad signing key): the store is closed again before the error goes up. */
function closeOnThrow<T>(db: Db, fileGuard: StoreFileGuard, step: () => T): T {
  try {
    return step();
  } catch (error) {
    fileGuard.stop();
    db.close();
    throw error;
  }
}

function requireIntactOrClose(db: Db): void {
  try {
    requireIntact(db);
  } catch (error) {
    db.close();
    throw error;
  }
}

function splitHostPort(addr: string): [string, string] {
  const i = addr.lastIndexOf(":");
  return [addr.slice(0, i).replace(/^\[|\]$/g, ""), addr.slice(i + 1)];
}

/**
 * Replicated mode with `--workers` is not built: several processes sharing
 * one file would each apply the log (ADR 26, 43). The primary refuses it
 * before anything is opened or written.
 */
function refuseReplicatedMode(config: Config): void {
  if (config.replication) {
    throw new ConfigError(
      "BULKHEAD_NATS_URL (--nats-url) is set with --workers; replicated mode runs one process per sidecar: drop --workers",
    );
  }
}

/**
 * Opens the change log over this sidecar's file. The catch-up runs while the
 * servers listen, reporting not ready until it is done (ADR 64). Local writes are refused from here on: only entries
 * applied from the log write, so the file stays a view of the stream.
 */
async function openReplication(
  config: Config,
  deps: { db: Db; writer: RevisionWriter; registry: CommandRegistry; clock: Clock; log: (message: string) => void; keySecret: Buffer },
): Promise<ReplicatedLog> {
  const replication = config.replication!;
  deps.writer.refuseLocalWrites(() => new BulkheadError(
    "REPLICATION_UNAVAILABLE",
    "this write is not replicated yet (admin writes, billing operations, Consume, Reserve, Commit, Release, ReportUsage, Check and BatchCheck with consume and Stripe webhooks are commands); refused so this sidecar cannot disagree with the others",
  ));
  const log = await ReplicatedLog.open(replication, {
    writer: deps.writer, registry: deps.registry, clock: deps.clock, log: deps.log, appliedRevision: readRevision(deps.db),
    keySecretFingerprint: keySecretFingerprint(deps.keySecret),
  });
  const { target } = log.readiness;
  deps.log(`replicated mode: stream ${replication.stream} at ${target} on start, this file at revision ${log.revision}`);
  return log;
}
