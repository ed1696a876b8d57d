import { Kysely, SqliteDialect, sql, type Generated } from "kysely";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { TenantViolation, TrustedTenantContext } from "../../src/client/index.js";
import { TenantScopePlugin } from "../../src/client/kysely/index.js";
import { hostDatabase, rawRow, startContextSource, type ContextSource } from "../support/tenant-contexts.js";

// The Kysely plugin on the host's own SQLite file through Kysely's
// better-sqlite3 dialect, with contexts a real sidecar resolved.
interface HostSchema {
  projects: { id: string; tenant_id: string; name: string; status: Generated<string> };
  reports: { id: string; tenant_id: string; project_id: string; title: string };
  plans: { code: string; name: string };
}

let source: ContextSource;
let acme: TrustedTenantContext;
let globex: TrustedTenantContext;
let host: ReturnType<typeof hostDatabase>;
let base: Kysely<HostSchema>;
let violations: TenantViolation[];
const scopedFor = (context: TrustedTenantContext) =>
  base.withPlugin(new TenantScopePlugin(context, { tenantOwned: { projects: "tenant_id", reports: "tenant_id" }, shared: ["plans"], onViolation: (v) => violations.push(v) }));

beforeAll(async () => {
  source = await startContextSource();
  acme = await source.contextOf("ten_acme", "usr_alice");
  globex = await source.contextOf("ten_globex", "usr_carol");
});
afterAll(async () => {
  await source.close();
});
beforeEach(() => {
  host = hostDatabase();
  violations = [];
  host.db.exec(`
    INSERT INTO projects (id, tenant_id, name) VALUES ('prj_a1', 'ten_acme', 'Acme roadmap'), ('prj_b1', 'ten_globex', 'Globex secrets');
    INSERT INTO reports (id, tenant_id, project_id, title) VALUES ('rep_a1', 'ten_acme', 'prj_a1', 'Q1'), ('rep_b1', 'ten_globex', 'prj_b1', 'Merger'),
      ('rep_x', 'ten_acme', 'prj_b1', 'dangling ref to B');
    INSERT INTO plans (code, name) VALUES ('pro', 'Pro');
  `);
  // The dialect does not own the connection: closing Kysely must not close the host's database twice.
  base = new Kysely<HostSchema>({ dialect: new SqliteDialect({ database: host.db }) });
});
afterEach(() => host.close());

describe("tenant B's project by id, from tenant A", () => {
  it("reads nothing, updates nothing, deletes nothing", async () => {
    const db = scopedFor(acme);
    expect(await db.selectFrom("projects").selectAll().where("id", "=", "prj_b1").executeTakeFirst()).toBeUndefined();
    const updated = await db.updateTable("projects").set({ name: "pwned" }).where("id", "=", "prj_b1").executeTakeFirst();
    expect(updated.numUpdatedRows).toBe(0n);
    const deleted = await db.deleteFrom("projects").where("id", "=", "prj_b1").executeTakeFirst();
    expect(deleted.numDeletedRows).toBe(0n);
    expect(rawRow(host.file, "projects", "prj_b1")).toEqual({ id: "prj_b1", tenant_id: "ten_globex", name: "Globex secrets", status: "open" });
    expect((await scopedFor(globex).selectFrom("projects").select("name").where("id", "=", "prj_b1").executeTakeFirst())?.name).toBe("Globex secrets");
  });

  it("keeps an OR in the query from widening past the tenant", async () => {
    const rows = await scopedFor(acme).selectFrom("projects").select("id").where((eb) => eb.or([eb("id", "=", "prj_b1"), sql<boolean>`1 = 1`])).execute();
    expect(rows.map((r) => r.id)).toEqual(["prj_a1"]);
  });

  it("keeps a raw OR in the query's WHERE from widening past the tenant", async () => {
    const rows = await scopedFor(acme).selectFrom("projects").select("id").where(sql<boolean>`id = ${"prj_b1"} OR 1 = 1`).execute();
    expect(rows.map((r) => r.id)).toEqual(["prj_a1"]);
  });

  it("scopes joins in their ON clause, subqueries and CTEs", async () => {
    const db = scopedFor(acme);
    const joined = await db.selectFrom("reports as r").leftJoin("projects as p", "p.id", "r.project_id").select(["r.id", "p.name"]).orderBy("r.id").execute();
    // rep_x points at B's project: the join finds nothing rather than B's name.
    expect(joined).toEqual([{ id: "rep_a1", name: "Acme roadmap" }, { id: "rep_x", name: null }]);
    const sub = await db.selectFrom("reports").select("id").where("project_id", "in", db.selectFrom("projects").select("id")).execute();
    expect(sub.map((r) => r.id)).toEqual(["rep_a1"]);
    const cte = await db.with("mine", (q) => q.selectFrom("projects").select(["id", "name"])).selectFrom("mine").selectAll().execute();
    expect(cte).toEqual([{ id: "prj_a1", name: "Acme roadmap" }]);
  });

  it("lets shared tables through unscoped", async () => {
    expect(await scopedFor(acme).selectFrom("plans").selectAll().execute()).toEqual([{ code: "pro", name: "Pro" }]);
  });
});

describe("inserts", () => {
  it("get the tenant id", async () => {
    await scopedFor(acme).insertInto("projects").values({ id: "prj_a2", name: "New" } as never).execute();
    expect(rawRow(host.file, "projects", "prj_a2")?.tenant_id).toBe("ten_acme");
  });

  it("throw for another tenant's id and write nothing", async () => {
    const attempt = scopedFor(acme).insertInto("projects").values({ id: "prj_forged", tenant_id: "ten_globex", name: "Plant" }).execute();
    await expect(attempt).rejects.toMatchObject({ code: "TENANT_MISMATCH" });
    expect(rawRow(host.file, "projects", "prj_forged")).toBeUndefined();
  });

  it("cannot take over another tenant's row through an upsert on its id", async () => {
    await scopedFor(acme)
      .insertInto("projects")
      .values({ id: "prj_b1", tenant_id: "ten_acme", name: "takeover" })
      .onConflict((oc) => oc.column("id").doUpdateSet({ name: "takeover" }))
      .execute();
    expect(rawRow(host.file, "projects", "prj_b1")?.name).toBe("Globex secrets");
  });

  it("refuses REPLACE, which would delete the other tenant's row", async () => {
    await expect(scopedFor(acme).replaceInto("projects").values({ id: "prj_b1", tenant_id: "ten_acme", name: "x" }).execute()).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
  });

  it("refuses to move a row to another tenant", async () => {
    await expect(scopedFor(acme).updateTable("projects").set({ tenant_id: "ten_globex" }).where("id", "=", "prj_a1").execute()).rejects.toMatchObject({ code: "TENANT_MISMATCH" });
  });
});

describe("queries it cannot scope are rejected before they run", () => {
  it("raw SQL, as a query or as a table source", async () => {
    await expect(sql`SELECT * FROM projects`.execute(scopedFor(acme))).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
    const fromRaw = scopedFor(acme).selectFrom(sql<{ id: string }>`(SELECT id FROM projects)`.as("p")).selectAll().execute();
    await expect(fromRaw).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
    const inWhere = scopedFor(acme).selectFrom("reports").select("id").where(sql<boolean>`project_id IN (SELECT id FROM projects)`).execute();
    await expect(inWhere).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
  });

  it("raw SQL that spells a tenant-owned table in pieces or as a parameter", async () => {
    const pieces = sql<boolean>`id IN (SEL${sql.raw("ECT")} id FROM proj${sql.raw("ects")})`;
    await expect(scopedFor(acme).selectFrom("reports").select("id").where(pieces).execute()).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
    // SQLite's `x IN table`: no SELECT keyword, the table as an identifier parameter.
    const inTable = sql<boolean>`project_id IN ${sql.table("projects")}`;
    await expect(scopedFor(acme).selectFrom("reports").select("id").where(inTable).execute()).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
  });

  it("any raw query and any schema change, whatever table it names", async () => {
    await expect(sql`DELETE FROM plans`.execute(scopedFor(acme))).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
    await expect(scopedFor(acme).schema.dropTable("plans").execute()).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
    expect(host.db.prepare("SELECT count(*) AS n FROM plans").get()).toEqual({ n: 1 });
  });

  it("a table declared neither tenant-owned nor shared", async () => {
    const db = base.withPlugin(new TenantScopePlugin(acme, { tenantOwned: { projects: "tenant_id" } }));
    await expect(db.selectFrom("reports").selectAll().execute()).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
  });

  it("INSERT ... SELECT", async () => {
    const db = scopedFor(acme);
    const copy = db.insertInto("projects").columns(["id", "tenant_id", "name"]).expression(db.selectFrom("reports").select(["id", "tenant_id", "title"]));
    await expect(copy.execute()).rejects.toMatchObject({ code: "TENANT_QUERY_UNSCOPED" });
  });
});

describe("rows coming back", () => {
  it("throw when one names another tenant, and are logged", async () => {
    host.db.prepare("INSERT INTO projects (id, tenant_id, name) VALUES ('prj_forged', 'TEN_ACME', 'Forged')").run();
    await expect(scopedFor(acme).selectFrom("projects").selectAll().execute()).rejects.toMatchObject({ code: "TENANT_MISMATCH" });
    expect(violations).toMatchObject([{ event: "tenant_row_mismatch", tenantId: "ten_acme", foundTenantId: "TEN_ACME", actorId: "usr_alice" }]);
  });
});

describe("no plugin without a trusted context", () => {
  it("throws for none and for a hand-built one", () => {
    // @ts-expect-error no context
    expect(() => new TenantScopePlugin(undefined, { tenantOwned: { projects: "tenant_id" } })).toThrow(expect.objectContaining({ code: "TENANT_CONTEXT_MISSING" }));
    expect(() => new TenantScopePlugin({ ...acme }, { tenantOwned: { projects: "tenant_id" } })).toThrow(expect.objectContaining({ code: "TENANT_CONTEXT_MISSING" }));
  });
});
