import type Database from "better-sqlite3";
import express from "express";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { LRUCache } from "lru-cache";
import {
  BulkheadClient,
  createTenantRepo,
  DownloadUrlRejected,
  DownloadUrlSigner,
  requireTenantObjectKey,
  requireTrustedContext,
  runTenantJob,
  SqliteJobRunStore,
  tenantJob,
  tenantKey,
  tenantObjectKey,
  TenantScopeError,
  type Clock,
  type SigningKey,
  type TenantContext,
  type TenantJobDenial,
  type TenantJobEnvelope,
  type TenantJobOutcome,
} from "bulkhead/client";
import { sqliteDriver } from "bulkhead/client/sqlite";
import { requirePermission, tenantContext, tenantContextOf } from "bulkhead/client/express";
import { openHostDatabase, tables } from "./host-db.js";

// The example host: Express on its own SQLite file, asking a Bulkhead
// sidecar. Every route reaches data through the request's trusted context:
// the guard checks the row's REAL tenant (read unscoped, by id), and the
// handler then reads and writes through a scoped repository, so either layer
// alone turns another tenant's id into a 404.

export interface HostAppOptions {
  bulkhead: BulkheadClient;
  /** The host's own SQLite file (created and seeded on first use). */
  dbPath: string;
  /** Local stand-in for object storage: objects live at `<filesDir>/<tenant-prefixed key>`. */
  filesDir: string;
  /** Where this app is reachable, for signed download links. */
  publicUrl: string;
  /** Download URL signing keys (newest first is customary) and the one to sign with. */
  urlKeys: SigningKey[];
  currentKeyId: string;
  /** Time for signed URLs and job run records (tests pass the shared test clock). */
  clock?: Clock;
  /** Audit sink for denied jobs (default: a JSON line on stderr). */
  onJobDenied?: (denial: TenantJobDenial) => void;
}

/** How long a signed download link lives. */
export const LINK_TTL_MS = 5 * 60_000;
const NOT_FOUND = { error: "not_found" };

/** The running example: the Express app, its database, and the export queue's worker. */
export interface HostApp {
  app: express.Express;
  db: Database.Database;
  /** Puts an envelope on the queue (the export route does this; a test can put a forged one). */
  enqueue(envelope: TenantJobEnvelope): void;
  /** Runs one envelope as the worker does (a redelivery calls this again with the same envelope). */
  runJob(envelope: TenantJobEnvelope): Promise<TenantJobOutcome<string>>;
  /** One worker pass over the queue. */
  runQueuedJobs(): Promise<TenantJobOutcome<string>[]>;
  /** Envelopes waiting for the worker. */
  queued(): TenantJobEnvelope[];
  close(): void;
}

export function createHostApp(options: HostAppOptions): HostApp {
  const { bulkhead } = options;
  const db: Database.Database = openHostDatabase(options.dbPath);
  const driver = sqliteDriver(db);
  const runs = new SqliteJobRunStore(db);
  const clock = options.clock ?? { now: () => Date.now() };
  // One cache for the whole app; tenantKey puts the tenant into every key, so no
  // tenant's entry can be read under another tenant's key.
  const dashboards = new LRUCache<string, Dashboard>({ max: 1000, ttl: 30_000 });
  const signer = (tenantId: string) =>
    new DownloadUrlSigner({
      keys: options.urlKeys,
      currentKeyId: options.currentKeyId,
      baseUrl: `${options.publicUrl}/t/${encodeURIComponent(tenantId)}/download`,
      maxTtlMs: LINK_TTL_MS,
      clock,
    });

  /** The scoped repository for one trusted context: the only way handlers and jobs touch tenant rows. */
  const repoFor = (context: TenantContext) => createTenantRepo(requireTrustedContext(context), { database: driver, tables });
  const repo = (req: express.Request) => repoFor(tenantContextOf(req));

  // Guards read the row unscoped, by id, and report its real tenant: another
  // tenant's row is then a wrong_tenant deny (404), never a check on our tenant.
  const rowRef = (table: "projects" | "reports" | "files", type: string) => {
    const byId = db.prepare<[string], { id: string; tenant_id: string }>(`SELECT id, tenant_id FROM ${table} WHERE id = ?`);
    return (req: express.Request) => {
      const row = byId.get(String(req.params.id));
      return row && { type, id: row.id, tenantId: row.tenant_id };
    };
  };
  const projectRef = rowRef("projects", "project");
  const reportRef = rowRef("reports", "report");
  const fileRef = rowRef("files", "file");
  /** Tenant-wide actions (list, create, dashboard) act on the caller's own tenant. */
  const tenantWide = (type: string) => (_req: express.Request, context: TenantContext) => ({ type, tenantId: context.tenantId });
  const forgetDashboard = (req: express.Request) => dashboards.delete(tenantKey(requireTrustedContext(tenantContextOf(req)), "dashboard"));

  const app = express();
  app.disable("x-powered-by");
  // Authentication stand-in: the tenant comes from the path, the user from a
  // header (a real host reads its session). Bulkhead decides membership.
  const principalOf = (req: express.Request) => {
    const user = req.get("x-user");
    const tenant = String(req.params.tenant ?? "");
    return user && tenant ? { tenantId: tenant, actorId: user, requestId: `req_${randomUUID()}` } : undefined;
  };
  app.use("/t/:tenant", tenantContext({ client: bulkhead, principalOf }));
  const t = express.Router({ mergeParams: true });
  t.use(express.json());

  t.get("/projects", requirePermission("projects.read", tenantWide("project")), (req, res) => {
    res.json(repo(req).projects.findMany({}, { orderBy: "name", limit: 100 }));
  });
  t.post("/projects", requirePermission("projects.create", tenantWide("project")), (req, res) => {
    const name = requiredName(req.body);
    if (!name) return void res.status(400).json({ error: "invalid_argument", field: "name" });
    const row = repo(req).projects.insert({ id: `prj_${randomUUID()}`, name });
    forgetDashboard(req);
    res.status(201).json(row);
  });
  t.get("/projects/:id", requirePermission("projects.read", projectRef), (req, res) => {
    const row = repo(req).projects.findById(String(req.params.id));
    row ? res.json(row) : res.status(404).json(NOT_FOUND);
  });
  // The action catalog has no projects.update: renaming needs the permission that creates projects.
  t.patch("/projects/:id", requirePermission("projects.create", projectRef), (req, res) => {
    const name = requiredName(req.body);
    if (!name) return void res.status(400).json({ error: "invalid_argument", field: "name" });
    const row = repo(req).projects.update(String(req.params.id), { name });
    if (row) forgetDashboard(req);
    row ? res.json(row) : res.status(404).json(NOT_FOUND);
  });
  t.delete("/projects/:id", requirePermission("projects.delete", projectRef), (req, res) => {
    const deleted = repo(req).projects.delete(String(req.params.id));
    if (deleted) forgetDashboard(req);
    deleted ? res.status(204).end() : res.status(404).json(NOT_FOUND);
  });

  t.get("/reports/:id", requirePermission("projects.read", reportRef), (req, res) => {
    const row = repo(req).reports.findById(String(req.params.id));
    row ? res.json(row) : res.status(404).json(NOT_FOUND);
  });
  // Export runs in the background: the request only enqueues an envelope built from its trusted context.
  t.post("/reports/:id/export", requirePermission("reports.export", reportRef), (req, res) => {
    const context = tenantContextOf(req);
    const reportId = String(req.params.id);
    const idempotencyKey = `export:${reportId}:${req.get("idempotency-key") ?? randomUUID()}`;
    const envelope = tenantJob(context, { action: "reports.export", resource: { type: "report", id: reportId }, idempotencyKey });
    enqueue(envelope);
    res.status(202).json({ queued: idempotencyKey });
  });

  t.get("/files", requirePermission("projects.read", tenantWide("file")), (req, res) => {
    res.json(repo(req).files.findMany({}, { orderBy: "name", limit: 100 }));
  });
  t.get("/files/:id/link", requirePermission("projects.read", fileRef), (req, res) => {
    const context = requireTrustedContext(tenantContextOf(req));
    const file = repo(req).files.findById(String(req.params.id));
    if (!file) return void res.status(404).json(NOT_FOUND);
    res.json({ url: signer(context.tenantId).sign(context, file.object_key, LINK_TTL_MS), expiresInMs: LINK_TTL_MS });
  });
  // The link is checked against the requester's own tenant: another tenant's,
  // an expired or a tampered link is a 404 like a missing file.
  t.get("/download", requirePermission("projects.read", tenantWide("file")), (req, res) => {
    const context = requireTrustedContext(tenantContextOf(req));
    let objectKey: string;
    try {
      objectKey = signer(context.tenantId).verify(new URL(req.originalUrl, options.publicUrl), context).objectKey;
    } catch (error) {
      if (error instanceof DownloadUrlRejected) return void res.status(404).json(NOT_FOUND);
      throw error;
    }
    const [file] = repo(req).files.findMany({ object_key: requireTenantObjectKey(context, objectKey) }, { limit: 1 });
    if (!file) return void res.status(404).json(NOT_FOUND);
    res.type("text/csv").attachment(file.name).send(readFileSync(join(options.filesDir, file.object_key)));
  });

  t.get("/dashboard", requirePermission("projects.read", tenantWide("dashboard")), (req, res) => {
    const context = requireTrustedContext(tenantContextOf(req));
    const key = tenantKey(context, "dashboard");
    let dashboard = dashboards.get(key);
    if (!dashboard) {
      const scoped = repoFor(context);
      const projects = scoped.projects.findMany({}, { orderBy: "name", limit: 100 });
      dashboard = { tenantId: context.tenantId, projects: projects.map((p) => p.name), reports: scoped.reports.findMany({}, { limit: 1000 }).length, files: scoped.files.findMany({}, { limit: 1000 }).length };
      dashboards.set(key, dashboard);
    }
    // The permission was checked for this request above; only the data is cached.
    res.json(dashboard);
  });

  // Role changes go through the same client, so its next check reads at
  // least that revision (read-your-writes): a downgrade holds from the next request.
  t.put("/members/:actor", requirePermission("members.invite", tenantWide("membership")), async (req, res, next) => {
    const role = typeof req.body?.role === "string" ? req.body.role : "";
    if (!role) return void res.status(400).json({ error: "invalid_argument", field: "role" });
    try {
      const context = tenantContextOf(req);
      await bulkhead.putMembership({ tenantId: context.tenantId, membership: { actorId: String(req.params.actor), role }, reason: `customer_request: role set by ${context.actorId}` });
      res.status(204).end();
    } catch (error) {
      next(error);
    }
  });

  app.use("/t/:tenant", t);
  app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    // A scope violation is a bug or an attack: log it, answer nothing useful.
    if (error instanceof TenantScopeError) console.error(JSON.stringify({ event: "tenant_scope_error", code: error.code, field: error.field }));
    else console.error(error);
    res.status(500).json({ error: "internal" });
  });

  // The queue and its worker. Delivery is at least once: a job is acked only
  // once it finished, was denied, or was already done; Bulkhead not answering
  // or a handler failure leaves it queued for the next pass.
  const enqueueStatement = db.prepare("INSERT INTO job_queue (envelope) VALUES (?)");
  function enqueue(envelope: TenantJobEnvelope): void {
    enqueueStatement.run(JSON.stringify(envelope));
  }
  const onDenied = options.onJobDenied ?? ((denial: TenantJobDenial) => console.error(JSON.stringify({ event: "job_denied", ...denial })));
  /** Runs one envelope as the worker does (a redelivery calls this again with the same envelope). */
  function runJob(envelope: TenantJobEnvelope): Promise<TenantJobOutcome<string>> {
    return runTenantJob(envelope, ({ context, resource }) => exportReport(context, String(resource.id)), {
      client: bulkhead,
      runs,
      loadResource: ({ id }) => reportRef({ params: { id } } as unknown as express.Request),
      onDenied,
      now: () => clock.now(),
    });
  }
  /** The job's effect: the report as CSV under the tenant's object prefix, plus its files row, through the run-time context. */
  function exportReport(context: TenantContext, reportId: string): string {
    const scoped = repoFor(context);
    const report = scoped.reports.findById(reportId);
    if (!report) throw new Error(`report ${reportId} vanished before its export ran`);
    const project = scoped.projects.findById(report.project_id);
    const objectKey = tenantObjectKey(requireTrustedContext(context), "exports", `${report.id}-${randomUUID()}.csv`);
    const path = join(options.filesDir, objectKey);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `report,title,project\n${report.id},${csv(report.title)},${csv(project?.name ?? "")}\n`);
    scoped.files.insert({ id: `file_${randomUUID()}`, report_id: report.id, object_key: objectKey, name: `${report.id}.csv` });
    return objectKey;
  }
  /** One worker pass over the queue. */
  async function runQueuedJobs(): Promise<TenantJobOutcome<string>[]> {
    const pending = db.prepare<[], { id: number; envelope: string }>("SELECT id, envelope FROM job_queue WHERE acked = 0 ORDER BY id").all();
    const outcomes: TenantJobOutcome<string>[] = [];
    for (const job of pending) {
      try {
        outcomes.push(await runJob(JSON.parse(job.envelope) as TenantJobEnvelope));
        db.prepare("UPDATE job_queue SET acked = 1 WHERE id = ?").run(job.id);
      } catch (error) {
        console.error(JSON.stringify({ event: "job_retry_later", job: job.id, message: (error as Error).message }));
      }
    }
    return outcomes;
  }

  return {
    app,
    db,
    enqueue,
    runJob,
    runQueuedJobs,
    queued: () => db.prepare<[], { envelope: string }>("SELECT envelope FROM job_queue WHERE acked = 0 ORDER BY id").all().map((r) => JSON.parse(r.envelope) as TenantJobEnvelope),
    close: () => db.close(),
  };
}

interface Dashboard {
  tenantId: string;
  projects: string[];
  reports: number;
  files: number;
}

function requiredName(body: unknown): string | undefined {
  const name = (body as { name?: unknown } | undefined)?.name;
  return typeof name === "string" && name.trim() !== "" && name.length <= 200 ? name.trim() : undefined;
}

/** A CSV field; a leading = + - @ is neutralised so a spreadsheet does not run it as a formula. */
function csv(value: string): string {
  const safe = /^[=+\-@]/.test(value) ? `'${value}` : value;
  return /[",\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
