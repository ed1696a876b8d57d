import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The example imports the package by its public names, which resolve through
// package.json "exports" to dist/; the test's client must be that same module.
import { BulkheadClient, type TenantJobDenial } from "bulkhead/client";
import { createHostApp, LINK_TTL_MS, type HostApp } from "../../examples/host-app/src/app.js";
import { startSidecarProcess } from "../support/processes.js";
import { TEST_SYNC_TOKEN, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { SECOND, testClock } from "../support/test-time.js";

// The example host app (examples/host-app) on a real HTTP port and its own
// SQLite file, asking a real sidecar over gRPC, attacked as a user would:
// over HTTP with another tenant's ids, links and jobs.
const clock = testClock();
let sidecar: TestSidecar;
let bulkhead: BulkheadClient;
let host: HostApp;
let server: Server;
let base: string;
let dir: string;
const denials: TenantJobDenial[] = [];

/** The app on a free port; it is built once the port (and so its public URL for links) is known. */
async function listen(make: (publicUrl: string) => HostApp): Promise<{ server: Server; url: string; host: HostApp }> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  const h = make(url);
  s.on("request", h.app);
  return { server: s, url, host: h };
}

const appOptions = (client: BulkheadClient, root: string, publicUrl: string) => ({
  bulkhead: client,
  dbPath: join(root, "host-app.db"),
  filesDir: join(root, "files"),
  publicUrl,
  urlKeys: [{ id: "k1", secret: "example-host-app-test-secret-0123456789" }],
  currentKeyId: "k1",
  clock,
  onJobDenied: (d: TenantJobDenial) => void denials.push(d),
});

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
  // The decision cache is on, so "no stale cache" is tested, not assumed.
  bulkhead = new BulkheadClient({ address: sidecar.grpcAddress, adminToken: TEST_SYNC_TOKEN, operator: "usr_ops", cache: { maxAgeMs: 60_000 } });
  dir = mkdtempSync(join(tmpdir(), "bulkhead-example-"));
  ({ server, url: base, host } = await listen((url) => createHostApp(appOptions(bulkhead, dir, url))));
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  host?.close();
  await bulkhead?.close();
  await sidecar?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, user?: string, body?: unknown, at = base) {
  const headers: Record<string, string> = user ? { "x-user": user } : {};
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(at + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    // CSV downloads stay text.
  }
  return { status: response.status, body: parsed as any };
}
const rows = (table: string) => host.db.prepare(`SELECT * FROM ${table} ORDER BY id`).all();
function decisionRow(decisionId: string) {
  sidecar.bulkhead.decisionLog.flush();
  return sidecar.bulkhead.db.prepare("SELECT tenant_id, actor_id, action, allow, reasons, resource_tenant_id, source FROM decision_log WHERE decision_id = ?").get(decisionId);
}
const setRole = (actor: string, role: string) => call("PUT", `/t/ten_acme/members/${actor}`, "usr_alice", { role });
const NOT_FOUND = { error: "not_found" };

describe("example host app", () => {
  it("answers 404 to tenant A's user reading, updating and deleting tenant B's project by id, and changes nothing", async () => {
    const before = rows("projects");
    expect(await call("GET", "/t/ten_acme/projects/prj_acme_1", "usr_alice")).toMatchObject({ status: 200, body: { name: "Acme roadmap" } });
    for (const [method, body] of [["GET"], ["PATCH", { name: "pwned" }], ["DELETE"]] as const) {
      expect(await call(method, "/t/ten_acme/projects/prj_globex_1", "usr_alice", body)).toEqual({ status: 404, body: NOT_FOUND });
      // The same through B's tenant path: alice is no member there.
      expect(await call(method, "/t/ten_globex/projects/prj_globex_1", "usr_alice", body)).toEqual({ status: 404, body: NOT_FOUND });
    }
    // An id that does not exist looks exactly the same.
    expect(await call("GET", "/t/ten_acme/projects/prj_nope", "usr_alice")).toEqual({ status: 404, body: NOT_FOUND });
    expect((await call("GET", "/t/ten_acme/projects", "usr_alice")).body.map((p: { tenant_id: string }) => p.tenant_id)).toEqual(["ten_acme", "ten_acme"]);
    expect(rows("projects")).toEqual(before);
  });

  it("never serves one tenant's cached dashboard to another", async () => {
    const acme = await call("GET", "/t/ten_acme/dashboard", "usr_alice");
    expect(acme).toMatchObject({ status: 200, body: { tenantId: "ten_acme", projects: ["Acme launch", "Acme roadmap"] } });
    // Warm for acme; globex's admin gets globex's own.
    expect(await call("GET", "/t/ten_globex/dashboard", "usr_carol")).toMatchObject({ status: 200, body: { tenantId: "ten_globex", projects: ["Globex secrets"] } });
    expect((await call("GET", "/t/ten_acme/dashboard", "usr_alice")).body).toEqual(acme.body);
    // A non-member of acme is refused even though acme's dashboard is in the cache.
    expect(await call("GET", "/t/ten_acme/dashboard", "usr_dave")).toEqual({ status: 404, body: NOT_FOUND });
    // A write drops only the writer's tenant entry: the next read shows it.
    expect((await call("POST", "/t/ten_globex/projects", "usr_carol", { name: "Globex two" })).status).toBe(201);
    expect((await call("GET", "/t/ten_globex/dashboard", "usr_carol")).body.projects).toEqual(["Globex secrets", "Globex two"]);
    expect((await call("GET", "/t/ten_acme/dashboard", "usr_alice")).body).toEqual(acme.body);
  });

  it("rejects tenant A's signed download link for tenant B, after tampering and after expiry", async () => {
    expect((await call("POST", "/t/ten_acme/reports/rep_acme_1/export", "usr_alice")).status).toBe(202);
    expect((await host.runQueuedJobs()).map((o) => o.status)).toEqual(["done"]);
    const [file] = (await call("GET", "/t/ten_acme/files", "usr_alice")).body;
    expect(file.object_key).toMatch(/^tenants\/ten_acme\/exports\/rep_acme_1-/);
    const { url } = (await call("GET", `/t/ten_acme/files/${file.id}/link`, "usr_alice")).body as { url: string };
    const link = new URL(url);
    expect(await call("GET", link.pathname + link.search, "usr_alice")).toMatchObject({ status: 200, body: expect.stringContaining("rep_acme_1,Roadmap status,Acme roadmap") });

    // Tenant B's user with A's link, on B's own download route.
    expect(await call("GET", `/t/ten_globex/download${link.search}`, "usr_carol")).toEqual({ status: 404, body: NOT_FOUND });
    // B's user cannot get a link for A's file either.
    expect(await call("GET", `/t/ten_globex/files/${file.id}/link`, "usr_carol")).toEqual({ status: 404, body: NOT_FOUND });
    // Tampering: another object, another tenant, a later expiry, a changed signature.
    const tampered = (name: string, value: string) => {
      const copy = new URL(link);
      copy.searchParams.set(name, value);
      return copy.pathname + copy.search;
    };
    for (const path of [
      tampered("object", "tenants/ten_acme/exports/other.csv"),
      tampered("tenant", "ten_globex").replace("/t/ten_acme/", "/t/ten_globex/"),
      tampered("expires", String(Number(link.searchParams.get("expires")) + 60)),
      tampered("sig", link.searchParams.get("sig")!.replace(/^./, (c) => (c === "A" ? "B" : "A"))),
    ]) {
      expect(await call("GET", path, path.includes("ten_globex") ? "usr_carol" : "usr_alice")).toEqual({ status: 404, body: NOT_FOUND });
    }
    // Expiry on the injected clock: valid a second before, refused at the end of its lifetime.
    clock.advance(LINK_TTL_MS - 2 * SECOND);
    expect((await call("GET", link.pathname + link.search, "usr_alice")).status).toBe(200);
    clock.advance(2 * SECOND);
    expect(await call("GET", link.pathname + link.search, "usr_alice")).toEqual({ status: 404, body: NOT_FOUND });
  });

  it("does nothing for a job enqueued for tenant A naming tenant B's report, and the denial is in the decision log", async () => {
    // Through the route it cannot be enqueued at all.
    expect(await call("POST", "/t/ten_acme/reports/rep_globex_1/export", "usr_alice")).toEqual({ status: 404, body: NOT_FOUND });
    // A forged (or buggy) queue message gets as far as the worker.
    const filesBefore = rows("files");
    denials.length = 0;
    host.enqueue({ tenantId: "ten_acme", requestedBy: { actorId: "usr_alice" }, permission: { action: "reports.export", resource: { type: "report", id: "rep_globex_1" } }, idempotencyKey: "forged-cross-tenant" });
    const [outcome] = await host.runQueuedJobs();
    expect(outcome).toMatchObject({ status: "denied", reasons: [{ code: "wrong_tenant" }] });
    expect(rows("files")).toEqual(filesBefore);
    expect(readdirSync(join(dir, "files", "tenants"))).toEqual(["ten_acme"]);
    expect(denials.map((d) => d.reasons.map((r) => r.code))).toEqual([["wrong_tenant"]]);
    expect(decisionRow((outcome as { decisionId: string }).decisionId)).toMatchObject({
      tenant_id: "ten_acme", actor_id: "usr_alice", action: "reports.export", allow: 0, reasons: '["wrong_tenant"]', resource_tenant_id: "ten_globex", source: "job",
    });
    expect(host.queued()).toEqual([]); // a denial is final: acked, not retried
  });

  it("denies at run time a job whose actor lost the permission after enqueueing", async () => {
    expect((await setRole("usr_bob", "member")).status).toBe(204);
    try {
      expect((await call("POST", "/t/ten_acme/reports/rep_acme_1/export", "usr_bob")).status).toBe(202);
      expect((await setRole("usr_bob", "viewer")).status).toBe(204);
      const filesBefore = rows("files");
      const [outcome] = await host.runQueuedJobs();
      expect(outcome).toMatchObject({ status: "denied", reasons: [{ code: "missing_permission" }] });
      expect(rows("files")).toEqual(filesBefore);
      expect(decisionRow((outcome as { decisionId: string }).decisionId)).toMatchObject({ tenant_id: "ten_acme", actor_id: "usr_bob", action: "reports.export", allow: 0, reasons: '["missing_permission"]' });
    } finally {
      await setRole("usr_bob", "viewer");
    }
  });

  it("gives an export job delivered three times one effect", async () => {
    expect((await call("POST", "/t/ten_acme/reports/rep_acme_1/export", "usr_alice", undefined)).status).toBe(202);
    const [envelope] = host.queued();
    const before = rows("files").length;
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await host.runJob(envelope!)).status);
    expect(statuses).toEqual(["done", "duplicate", "duplicate"]);
    // The queue's own delivery of it is a fourth: still one effect.
    expect((await host.runQueuedJobs()).map((o) => o.status)).toEqual(["duplicate"]);
    expect(rows("files").length).toBe(before + 1);
    expect(readdirSync(join(dir, "files", "tenants", "ten_acme", "exports"))).toHaveLength(before + 1);
  });

  it("sees a role downgrade on the next request, with the decision cache on", async () => {
    expect((await setRole("usr_bob", "member")).status).toBe(204);
    try {
      expect((await call("POST", "/t/ten_acme/projects", "usr_bob", { name: "Bob one" })).status).toBe(201);
      expect((await call("POST", "/t/ten_acme/projects", "usr_bob", { name: "Bob two" })).status).toBe(201); // same check: cacheable
      expect(bulkhead.cacheStatus?.live).toBe(true);
      expect((await setRole("usr_bob", "viewer")).status).toBe(204);
      const before = rows("projects");
      expect(await call("POST", "/t/ten_acme/projects", "usr_bob", { name: "Bob three" })).toEqual({ status: 403, body: { error: "forbidden" } });
      expect(rows("projects")).toEqual(before);
    } finally {
      await setRole("usr_bob", "viewer");
    }
  });

  it("fails every request closed with 503 within the client deadline when the sidecar process dies", async () => {
    const root = mkdtempSync(join(tmpdir(), "bulkhead-example-down-"));
    const child = await startSidecarProcess(join(root, "bulkhead.db"));
    const deadlineMs = 500;
    const client = new BulkheadClient({ address: child.grpcAddress, deadlineMs });
    const down = await listen((url) => createHostApp(appOptions(client, root, url)));
    try {
      expect((await call("GET", "/t/ten_acme/projects/prj_acme_1", "usr_alice", undefined, down.url)).status).toBe(200);
      await new Promise((resolve) => (child.child.once("exit", resolve), child.child.kill("SIGKILL")));
      const before = down.host.db.prepare("SELECT * FROM projects ORDER BY id").all();
      const requests: [string, string, unknown?][] = [
        ["GET", "/t/ten_acme/projects"],
        ["GET", "/t/ten_acme/projects/prj_acme_1"],
        ["PATCH", "/t/ten_acme/projects/prj_acme_1", { name: "while down" }],
        ["DELETE", "/t/ten_acme/projects/prj_acme_1"],
        ["POST", "/t/ten_acme/projects", { name: "while down" }],
        ["GET", "/t/ten_acme/dashboard"],
        ["POST", "/t/ten_acme/reports/rep_acme_1/export"],
        ["GET", "/t/ten_acme/files"],
        ["PUT", "/t/ten_acme/members/usr_bob", { role: "owner" }],
      ];
      for (const [method, path, body] of requests) {
        const started = performance.now();
        expect(await call(method, path, "usr_alice", body, down.url), `${method} ${path}`).toEqual({ status: 503, body: { error: "unavailable" } });
        // Fail-closed is bounded by the deadline (with room for a loaded machine), not a hang.
        expect(performance.now() - started).toBeLessThan(deadlineMs * 6);
      }
      expect(down.host.db.prepare("SELECT * FROM projects ORDER BY id").all()).toEqual(before);
      expect(down.host.queued()).toEqual([]);
    } finally {
      child.child.kill("SIGKILL");
      await new Promise((resolve) => down.server.close(resolve));
      down.host.close();
      await client.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
