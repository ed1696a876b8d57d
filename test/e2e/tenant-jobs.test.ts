import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  BulkheadClient,
  runTenantJob,
  SqliteJobRunStore,
  tenantJob,
  TenantJobUnavailableError,
  type TenantJobDenial,
  type TenantJobEnvelope,
} from "../../src/client/index.js";
import { openHostDb, type HostDb } from "../support/host-db.js";
import { TEST_ADMIN_TOKEN, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { TEST_START, testClock } from "../support/test-time.js";

// runTenantJob against a real sidecar, with the host's own SQLite file
// holding the objects, the job's effects and the run records.
let sidecar: TestSidecar;
let client: BulkheadClient;
let host: HostDb;
let runs: SqliteJobRunStore;
let denials: TenantJobDenial[] = [];
const clock = testClock();

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
  client = new BulkheadClient({ address: sidecar.grpcAddress, adminToken: TEST_ADMIN_TOKEN, operator: "usr_ops" });
  host = openHostDb();
  runs = new SqliteJobRunStore(host.db);
});
afterAll(async () => {
  await client.close();
  host?.close();
  await sidecar?.close();
});
beforeEach(() => {
  denials = [];
});

/** Unscoped lookup by id: the row's real tenant goes into the check. */
const loadResource = (r: { type: string; id: string }) => {
  const row = host.project(r.id);
  return row && { type: "project", id: row.id, tenantId: row.tenant_id };
};
const options = (bulkhead = client) => ({ client: bulkhead, runs, loadResource, onDenied: (d: TenantJobDenial) => void denials.push(d), now: () => clock.now() });
const exportsFor = (key: string) => host.db.prepare("SELECT tenant_id, project_id, by_actor FROM exports WHERE project_id = ?").all(key);
/** The job's effect: one export row, written with the rebuilt context's tenant and actor. */
const exportProject = ({ context, resource }: { context: { tenantId: string; actorId: string }; resource: { id?: string } }) => {
  host.db.prepare("INSERT INTO exports (tenant_id, project_id, by_actor) VALUES (?, ?, ?)").run(context.tenantId, resource.id, context.actorId);
  return "exported";
};
function decisionRow(decisionId: string) {
  sidecar.bulkhead.decisionLog.flush();
  return sidecar.bulkhead.db.prepare("SELECT tenant_id, actor_id, action, allow, reasons, resource_tenant_id FROM decision_log WHERE decision_id = ?").get(decisionId);
}
async function enqueue(tenantId: string, actorId: string, action: string, projectId: string, key: string): Promise<TenantJobEnvelope> {
  const context = await client.resolveContext({ principal: { tenantId, actorId } });
  return tenantJob(context, { action, resource: { type: "project", id: projectId }, idempotencyKey: key });
}

describe("runTenantJob", () => {
  it("runs an allowed job with the context rebuilt at run time", async () => {
    const job = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_acme_1", "job-allowed");
    let seen: { role: string; source: string } | undefined;
    const outcome = await runTenantJob(job, (run) => {
      seen = { role: run.context.membershipRole, source: run.context.source };
      return exportProject(run);
    }, options());
    expect(outcome).toEqual({ status: "done", result: "exported" });
    expect(seen).toEqual({ role: "owner", source: "job" });
  });

  it("denies a job whose actor lost the permission after it was enqueued, and audits it", async () => {
    const job = await enqueue("ten_globex", "usr_carol", "projects.delete", "prj_globex_1", "job-downgraded");
    await client.putMembership({ tenantId: "ten_globex", membership: { actorId: "usr_carol", role: "viewer" }, reason: "customer_request: downgrade" });
    try {
      let ran = false;
      const outcome = await runTenantJob(job, () => (ran = true), options());
      expect(ran).toBe(false);
      expect(outcome).toMatchObject({ status: "denied", reasons: [{ code: "missing_permission" }] });
      expect(denials).toHaveLength(1);
      const decisionId = (outcome as { decisionId: string }).decisionId;
      expect(denials[0]!.decisionId).toBe(decisionId);
      expect(decisionRow(decisionId)).toMatchObject({ tenant_id: "ten_globex", actor_id: "usr_carol", action: "projects.delete", allow: 0, reasons: '["missing_permission"]' });
      // Final: a retry of the denied job is skipped, not re-run against a restored role later.
      expect(await runTenantJob(job, () => (ran = true), options())).toEqual({ status: "duplicate" });
    } finally {
      await client.putMembership({ tenantId: "ten_globex", membership: { actorId: "usr_carol", role: "admin" }, reason: "customer_request: restore" });
    }
  });

  it("does nothing for a tenant A job naming tenant B's object, and audits the denial", async () => {
    const job = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_globex_1", "job-cross-tenant");
    const outcome = await runTenantJob(job, exportProject, options());
    expect(outcome).toMatchObject({ status: "denied", reasons: [{ code: "wrong_tenant" }] });
    expect(exportsFor("prj_globex_1")).toEqual([]);
    expect(denials.map((d) => d.reasons.map((r) => r.code))).toEqual([["wrong_tenant"]]);
    expect(decisionRow((outcome as { decisionId: string }).decisionId)).toMatchObject({
      tenant_id: "ten_acme", actor_id: "usr_alice", allow: 0, reasons: '["wrong_tenant"]', resource_tenant_id: "ten_globex",
    });
  });

  it("denies a job for an object that no longer exists", async () => {
    const job = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_gone", "job-gone");
    expect(await runTenantJob(job, exportProject, options())).toMatchObject({ status: "denied", reasons: [{ code: "resource_not_found" }] });
    expect(denials).toHaveLength(1);
  });

  it("gives a job retried three times one effect, sequentially and concurrently", async () => {
    host.db.prepare("INSERT INTO projects VALUES ('prj_acme_retry', 'ten_acme', 'retry'), ('prj_acme_race', 'ten_acme', 'race')").run();
    const job = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_acme_retry", "job-retried");
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push((await runTenantJob(job, exportProject, options())).status);
    expect(outcomes).toEqual(["done", "duplicate", "duplicate"]);
    expect(exportsFor("prj_acme_retry")).toHaveLength(1);

    const race = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_acme_race", "job-raced");
    const raced = await Promise.all([0, 1, 2].map(() => runTenantJob(race, exportProject, options())));
    expect(raced.map((o) => o.status).sort()).toEqual(["done", "in_progress", "in_progress"]);
    expect(exportsFor("prj_acme_race")).toHaveLength(1);
  });

  it("runs a job again after its handler failed, still once in effect", async () => {
    host.db.prepare("INSERT INTO projects VALUES ('prj_acme_flaky', 'ten_acme', 'flaky')").run();
    const job = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_acme_flaky", "job-flaky");
    await expect(runTenantJob(job, () => { throw new Error("disk full"); }, options())).rejects.toThrow("disk full");
    expect((await runTenantJob(job, exportProject, options())).status).toBe("done");
    expect((await runTenantJob(job, exportProject, options())).status).toBe("duplicate");
    expect(exportsFor("prj_acme_flaky")).toHaveLength(1);
  });

  it("keeps idempotency keys per tenant: tenant B's job with A's key still runs", async () => {
    const a = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_acme_1", "job-shared-key");
    const b = await enqueue("ten_globex", "usr_carol", "projects.read", "prj_globex_1", "job-shared-key");
    expect((await runTenantJob(a, exportProject, options())).status).toBe("done");
    expect((await runTenantJob(b, exportProject, options())).status).toBe("done");
  });

  it("throws, runs nothing and keeps the job retryable when the sidecar is down", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const down = new BulkheadClient({ address: `127.0.0.1:${port}`, deadlineMs: 300 });
    host.db.prepare("INSERT INTO projects VALUES ('prj_acme_down', 'ten_acme', 'down')").run();
    const job = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_acme_down", "job-down");
    await expect(runTenantJob(job, exportProject, options(down))).rejects.toBeInstanceOf(TenantJobUnavailableError);
    expect(exportsFor("prj_acme_down")).toEqual([]);
    expect(denials).toEqual([]);
    expect((await runTenantJob(job, exportProject, options())).status).toBe("done");
    await down.close();
  });

  it("takes over a claim whose worker died once its lease ran out, not before", async () => {
    host.db.prepare("INSERT INTO projects VALUES ('prj_acme_dead', 'ten_acme', 'dead')").run();
    const job = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_acme_dead", "job-dead-worker");
    expect(runs.claim("ten_acme", "job-dead-worker", clock.now())).toBe("claimed"); // a worker that never finishes
    expect((await runTenantJob(job, exportProject, options())).status).toBe("in_progress");
    clock.advance(15 * 60_000);
    expect((await runTenantJob(job, exportProject, options())).status).toBe("done");
    expect(exportsFor("prj_acme_dead")).toHaveLength(1);
    expect(clock.now()).toBeGreaterThan(TEST_START);
  });

  it("refuses an envelope without a tenant, naming the field, and runs nothing", async () => {
    const job = await enqueue("ten_acme", "usr_alice", "projects.read", "prj_acme_1", "job-mangled");
    await expect(runTenantJob({ ...job, tenantId: "" }, exportProject, options())).rejects.toThrow(/tenantId is required/);
    await expect(runTenantJob({ ...job, permission: { action: "projects.read" } } as never, exportProject, options())).rejects.toThrow(/permission\.resource\.type/);
  });
});
