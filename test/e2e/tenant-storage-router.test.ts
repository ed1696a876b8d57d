import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTenantRepo, TenantStorageRouter, tenantTable, type TenantRepoDriver, type TrustedTenantContext } from "../../src/client/index.js";
import { sqliteDriver } from "../../src/client/sqlite/index.js";
import { adminClient } from "../support/admin-client.js";
import { hostDatabase, startContextSource, type ContextSource } from "../support/tenant-contexts.js";

// Isolation tiers over three real SQLite files. The tier comes from the
// tenant's record in Bulkhead (AdminService PutTenant), through a context the
// sidecar resolved; the router only reads configuration.
const projects = tenantTable<{ id: string; tenant_id: string; name: string; status: string }>({
  tenantColumn: "tenant_id", idColumn: "id", columns: ["id", "tenant_id", "name", "status"],
});
const TENANTS = {
  ten_acme: { slug: "acme", name: "Acme", planCode: "pro", region: "us", tags: ["beta"] },
  ten_globex: { slug: "globex", name: "Globex", planCode: "free", region: "eu", tags: [] },
  ten_initech: { slug: "initech", name: "Initech", planCode: "pro", region: "us", tags: [], billingStatus: "unpaid" },
} as const;

let source: ContextSource;
let shared: ReturnType<typeof hostDatabase>;
let eu: ReturnType<typeof hostDatabase>;
let dedicated: ReturnType<typeof hostDatabase>;
let router: TenantStorageRouter<TenantRepoDriver>;
let admin: ReturnType<typeof adminClient>;

/** Sets a tenant's isolation tier in Bulkhead and resolves a fresh context that has seen the write. */
async function moveTo(tenantId: keyof typeof TENANTS, isolationTier: string, actorId: string): Promise<TrustedTenantContext> {
  const write = await admin.call<{ storeRevision: number }>("putTenant", { tenantId, ...TENANTS[tenantId], isolationTier, reason: "customer_request: isolation tier" });
  return source.client.resolveContext({ principal: { tenantId, actorId }, minRevision: write.storeRevision });
}
const repoFor = (context: TrustedTenantContext) => createTenantRepo(context, { database: router.connectionFor(context), tables: { projects } }).projects;
const ids = (db: ReturnType<typeof hostDatabase>) => (db.db.prepare("SELECT id, tenant_id, name FROM projects ORDER BY id").all() as { id: string }[]);

beforeAll(async () => {
  source = await startContextSource();
  admin = adminClient(source.sidecar.grpcAddress);
  shared = hostDatabase();
  eu = hostDatabase();
  dedicated = hostDatabase();
  router = new TenantStorageRouter({ shared: sqliteDriver(shared.db), regional: { eu: sqliteDriver(eu.db) }, dedicated: { ten_acme: sqliteDriver(dedicated.db) } });
});
afterAll(async () => {
  admin.client.close();
  for (const db of [shared, eu, dedicated]) db.close();
  await source.close();
});

describe("tenant storage router", () => {
  it("keeps shared-tier tenants in the shared database", async () => {
    const acme = await source.contextOf("ten_acme", "usr_alice");
    expect(acme.isolationTier).toBe("shared");
    repoFor(acme).insert({ id: "prj_a1", name: "Roadmap" });
    expect(router.placementOf(acme)).toMatchObject({ tier: "shared", entry: "shared" });
    expect(ids(shared)).toEqual([{ id: "prj_a1", tenant_id: "ten_acme", name: "Roadmap" }]);
    expect(ids(dedicated)).toEqual([]);
  });

  it("puts a regional tenant in its region's database", async () => {
    const globex = await moveTo("ten_globex", "regional", "usr_carol");
    repoFor(globex).insert({ id: "prj_b1", name: "EU only" });
    expect(ids(eu)).toEqual([{ id: "prj_b1", tenant_id: "ten_globex", name: "EU only" }]);
    expect(ids(shared).map((r) => r.id)).toEqual(["prj_a1"]);
  });

  it("reads and writes a tenant moved to the dedicated tier only in the dedicated database", async () => {
    // The move: copy the tenant's rows, configure the connection (done above), flip the tier in Bulkhead.
    const insert = dedicated.db.prepare("INSERT INTO projects (id, tenant_id, name, status) VALUES (@id, @tenant_id, @name, @status)");
    for (const row of shared.db.prepare("SELECT * FROM projects WHERE tenant_id = 'ten_acme'").all()) insert.run(row);
    // A row that reached the shared file after the copy: a reader of the shared file would see it.
    shared.db.prepare("INSERT INTO projects (id, tenant_id, name) VALUES ('prj_late', 'ten_acme', 'written to shared after the copy')").run();
    const sharedBefore = ids(shared);

    const acme = await moveTo("ten_acme", "dedicated", "usr_alice");
    expect(acme.isolationTier).toBe("dedicated");
    expect(router.placementOf(acme)).toMatchObject({ tier: "dedicated", entry: "ten_acme" });
    const repo = repoFor(acme);
    expect(repo.findMany().map((r) => r.id)).toEqual(["prj_a1"]);
    expect(repo.findById("prj_late")).toBeUndefined();
    repo.insert({ id: "prj_a2", name: "After the move" });
    repo.update("prj_a1", { name: "Roadmap v2" });
    expect(repo.delete("prj_late")).toBe(false);

    expect(ids(dedicated)).toEqual([
      { id: "prj_a1", tenant_id: "ten_acme", name: "Roadmap v2" },
      { id: "prj_a2", tenant_id: "ten_acme", name: "After the move" },
    ]);
    expect(ids(shared)).toEqual(sharedBefore);
  });

  it("never falls back to the shared database for a tier with no connection", async () => {
    const initech = await moveTo("ten_initech", "dedicated", "usr_dave");
    expect(() => router.connectionFor(initech)).toThrow(expect.objectContaining({ code: "TENANT_SCOPE_INVALID", field: "dedicated.ten_initech" }));
    const usRegional = await moveTo("ten_initech", "regional", "usr_dave");
    expect(() => router.connectionFor(usRegional)).toThrow(expect.objectContaining({ field: "regional.us" }));
    const unknown = await moveTo("ten_initech", "platinum", "usr_dave");
    expect(() => router.connectionFor(unknown)).toThrow(expect.objectContaining({ field: "context.isolation_tier" }));
  });

  it("routes only trusted contexts", async () => {
    const acme = await source.contextOf("ten_acme", "usr_alice");
    expect(() => router.connectionFor({ ...acme, isolationTier: "shared" })).toThrow(expect.objectContaining({ code: "TENANT_CONTEXT_MISSING" }));
    expect(() => new TenantStorageRouter({})).toThrow(expect.objectContaining({ field: "config" }));
  });
});
