import express from "express";
import Fastify from "fastify";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BulkheadClient } from "../../src/client/index.js";
import * as forExpress from "../../src/client/express/index.js";
import * as forFastify from "../../src/client/fastify/index.js";
import { openHostDb, type HostDb } from "../support/host-db.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// The Express and Fastify adapters in front of real HTTP servers, asking a
// real sidecar, guarding rows of a real host SQLite file. One table of
// attacks runs against both frameworks and must give the same answers.
let sidecar: TestSidecar;
let client: BulkheadClient;
let down: BulkheadClient;
let host: HostDb;
/** Route handlers that ran, so a test can prove a refused request reached none. */
let ran: string[] = [];
const servers: { name: string; url: string; downUrl: string; close(): Promise<void> }[] = [];

/** The host's authentication: tenant from the path, user from a header (a stand-in for a session). */
const principalOf = (req: { params?: unknown; headers: Record<string, unknown> }) => {
  const user = req.headers["x-user"];
  const tenant = (req.params as { tenant?: string } | undefined)?.tenant;
  return typeof user === "string" && tenant ? { tenantId: tenant, actorId: user, requestId: "req_http" } : undefined;
};
/** The row's tenant comes from the host database, never from the caller. */
const projectOf = (req: { params?: unknown }) => {
  const row = host.project((req.params as { id: string }).id);
  return row && { type: "project", id: row.id, tenantId: row.tenant_id };
};

function expressApp(bulkhead: BulkheadClient): express.Express {
  const app = express();
  app.use("/t/:tenant", forExpress.tenantContext({ client: bulkhead, principalOf }));
  const router = express.Router({ mergeParams: true });
  router.get("/me", (req, res) => {
    ran.push("me");
    const c = forExpress.tenantContextOf(req);
    res.json({ tenantId: c.tenantId, role: c.membershipRole });
  });
  router.get("/projects/:id", forExpress.requirePermission("projects.read", projectOf), (req, res) => {
    ran.push("read");
    res.json(host.project((req.params as { id: string }).id));
  });
  router.delete("/projects/:id", forExpress.requirePermission("projects.delete", projectOf), (req, res) => {
    ran.push("delete");
    host.db.prepare("DELETE FROM projects WHERE id = ?").run((req.params as { id: string }).id);
    res.status(204).end();
  });
  app.use("/t/:tenant", router);
  // A guard wired without the context middleware must refuse, not wave through.
  app.get("/unwired/projects/:id", forExpress.requirePermission("projects.read", projectOf), (_req, res) => {
    ran.push("unwired");
    res.json({ leaked: true });
  });
  app.use((error: Error & { statusCode?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(error.statusCode ?? 500).json({ error: "internal" });
  });
  return app;
}

async function fastifyApp(bulkhead: BulkheadClient) {
  const app = Fastify();
  await app.register(async (scoped) => {
    await scoped.register(forFastify.tenantContextPlugin, { client: bulkhead, principalOf });
    scoped.get("/t/:tenant/me", async (req) => {
      ran.push("me");
      const c = forFastify.tenantContextOf(req);
      return { tenantId: c.tenantId, role: c.membershipRole };
    });
    scoped.get("/t/:tenant/projects/:id", { preHandler: forFastify.requirePermission("projects.read", projectOf) }, async (req) => {
      ran.push("read");
      return host.project((req.params as { id: string }).id);
    });
    scoped.delete("/t/:tenant/projects/:id", { preHandler: forFastify.requirePermission("projects.delete", projectOf) }, async (req, reply) => {
      ran.push("delete");
      host.db.prepare("DELETE FROM projects WHERE id = ?").run((req.params as { id: string }).id);
      return reply.code(204).send();
    });
  });
  app.get("/unwired/projects/:id", { preHandler: forFastify.requirePermission("projects.read", projectOf) }, async () => {
    ran.push("unwired");
    return { leaked: true };
  });
  return app;
}

async function listenExpress(app: express.Express): Promise<{ url: string; close(): Promise<void> }> {
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

async function listenFastify(app: Awaited<ReturnType<typeof fastifyApp>>): Promise<{ url: string; close(): Promise<void> }> {
  const url = await app.listen({ port: 0, host: "127.0.0.1" });
  return { url, close: () => app.close() };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock: testClock() } });
  client = new BulkheadClient({ address: sidecar.grpcAddress });
  down = new BulkheadClient({ address: `127.0.0.1:${await closedPort()}`, deadlineMs: 500 });
  host = openHostDb();
  const [e, eDown] = [await listenExpress(expressApp(client)), await listenExpress(expressApp(down))];
  const [f, fDown] = [await listenFastify(await fastifyApp(client)), await listenFastify(await fastifyApp(down))];
  servers.push({ name: "express", url: e.url, downUrl: eDown.url, close: async () => (await e.close(), await eDown.close()) });
  servers.push({ name: "fastify", url: f.url, downUrl: fDown.url, close: async () => (await f.close(), await fDown.close()) });
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await client.close();
  await down.close();
  host?.close();
  await sidecar?.close();
});

async function call(base: string, method: string, path: string, user?: string) {
  ran = [];
  const response = await fetch(base + path, { method, headers: user ? { "x-user": user } : {} });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text), ran: [...ran] };
}

const NOT_FOUND = { error: "not_found" };

describe.each(["express", "fastify"])("%s", (name) => {
  const server = () => servers.find((s) => s.name === name)!;

  it("attaches the trusted context for a member", async () => {
    const r = await call(server().url, "GET", "/t/ten_acme/me", "usr_bob");
    expect(r).toMatchObject({ status: 200, body: { tenantId: "ten_acme", role: "viewer" }, ran: ["me"] });
  });

  it("answers a non-member and an unknown tenant with the same 404, and runs nothing", async () => {
    const nonMember = await call(server().url, "GET", "/t/ten_acme/me", "usr_dave");
    const unknown = await call(server().url, "GET", "/t/ten_nowhere/me", "usr_alice");
    expect(nonMember).toEqual({ status: 404, body: NOT_FOUND, ran: [] });
    expect(unknown).toEqual(nonMember);
  });

  it("answers 401 when the host's authentication found nobody", async () => {
    expect(await call(server().url, "GET", "/t/ten_acme/me")).toEqual({ status: 401, body: { error: "unauthenticated" }, ran: [] });
  });

  it("lets a member read their own tenant's row", async () => {
    const r = await call(server().url, "GET", "/t/ten_acme/projects/prj_acme_1", "usr_bob");
    expect(r).toMatchObject({ status: 200, body: { id: "prj_acme_1" }, ran: ["read"] });
  });

  it("answers another tenant's row by id with the same 404 as a missing row, and changes nothing", async () => {
    const read = await call(server().url, "GET", "/t/ten_acme/projects/prj_globex_1", "usr_alice");
    const del = await call(server().url, "DELETE", "/t/ten_acme/projects/prj_globex_1", "usr_alice");
    const missing = await call(server().url, "GET", "/t/ten_acme/projects/prj_none", "usr_alice");
    expect(read).toEqual({ status: 404, body: NOT_FOUND, ran: [] });
    expect(del).toEqual(read);
    expect(missing).toEqual(read);
    expect(host.project("prj_globex_1")).toBeDefined();
  });

  it("answers 403 to a member whose role lacks the permission, and changes nothing", async () => {
    const r = await call(server().url, "DELETE", "/t/ten_acme/projects/prj_acme_1", "usr_bob");
    expect(r).toEqual({ status: 403, body: { error: "forbidden" }, ran: [] });
    expect(host.project("prj_acme_1")).toBeDefined();
  });

  it("fails closed with 503 when the sidecar is down: no context, no route", async () => {
    expect(await call(server().downUrl, "GET", "/t/ten_acme/me", "usr_alice")).toEqual({ status: 503, body: { error: "unavailable" }, ran: [] });
    expect(await call(server().downUrl, "DELETE", "/t/ten_acme/projects/prj_acme_1", "usr_alice")).toEqual({ status: 503, body: { error: "unavailable" }, ran: [] });
    expect(host.project("prj_acme_1")).toBeDefined();
  });

  it("refuses a guard wired without the context middleware", async () => {
    const r = await call(server().url, "GET", "/unwired/projects/prj_acme_1", "usr_alice");
    expect(r.status).toBe(500);
    expect(r.ran).toEqual([]);
  });
});

describe("the allowed delete", () => {
  it("runs for the owner (the guards are not simply closed)", async () => {
    for (const s of servers) {
      host.db.prepare("INSERT OR IGNORE INTO projects VALUES ('prj_acme_tmp', 'ten_acme', 'tmp')").run();
      const r = await call(s.url, "DELETE", "/t/ten_acme/projects/prj_acme_tmp", "usr_alice");
      expect(r).toEqual({ status: 204, body: undefined, ran: ["delete"] });
      expect(host.project("prj_acme_tmp")).toBeUndefined();
    }
  });
});
