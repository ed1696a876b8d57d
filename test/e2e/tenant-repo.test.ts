import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createTenantRepo,
  isTrustedContext,
  tenantTable,
  type TenantViolation,
  type TrustedTenantContext,
} from "../../src/client/index.js";
import { sqliteDriver } from "../../src/client/sqlite/index.js";
import { hostDatabase, rawRow, startContextSource, type ContextSource } from "../support/tenant-contexts.js";

// createTenantRepo over the host's own better-sqlite3 file, with contexts a
// real sidecar resolved. Tenant B's rows are looked for from tenant A's
// context by id, the way an attacker who guessed an id would.
interface Project extends Record<string, unknown> {
  id: string;
  tenant_id: string;
  name: string;
  status: string;
}
const projects = tenantTable<Project>({ tenantColumn: "tenant_id", idColumn: "id", columns: ["id", "tenant_id", "name", "status"] });

let source: ContextSource;
let acme: TrustedTenantContext;
let globex: TrustedTenantContext;
let host: ReturnType<typeof hostDatabase>;
let violations: TenantViolation[];
const repoFor = (context: TrustedTenantContext) =>
  createTenantRepo(context, { database: sqliteDriver(host.db), tables: { projects }, onViolation: (v) => violations.push(v) });

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
  const insert = host.db.prepare("INSERT INTO projects (id, tenant_id, name) VALUES (?, ?, ?)");
  insert.run("prj_a1", "ten_acme", "Acme roadmap");
  insert.run("prj_a2", "ten_acme", "Acme launch");
  insert.run("prj_b1", "ten_globex", "Globex secrets");
});
afterEach(() => host.close());

describe("another tenant's row does not exist", () => {
  it("reads, updates and deletes tenant B's project by id from tenant A: not found, nothing changed", () => {
    const before = rawRow(host.file, "projects", "prj_b1");
    const repo = repoFor(acme).projects;
    expect(repo.findById("prj_b1")).toBeUndefined();
    expect(repo.findMany({ id: "prj_b1" })).toEqual([]);
    expect(repo.update("prj_b1", { name: "pwned" })).toBeUndefined();
    expect(repo.delete("prj_b1")).toBe(false);
    expect(rawRow(host.file, "projects", "prj_b1")).toEqual(before);
    // The same calls from B's own context do reach it, so the calls themselves work.
    expect(repoFor(globex).projects.findById("prj_b1")?.name).toBe("Globex secrets");
  });

  it("lists only the tenant's rows", () => {
    expect(repoFor(acme).projects.findMany({}, { orderBy: "id" }).map((p) => p.id)).toEqual(["prj_a1", "prj_a2"]);
    expect(repoFor(globex).projects.findMany().map((p) => p.id)).toEqual(["prj_b1"]);
  });

  it("refuses a filter that names another tenant instead of widening to it", () => {
    expect(() => repoFor(acme).projects.findMany({ tenant_id: "ten_globex" })).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH", field: "where.tenant_id" }));
  });

  it("updates and deletes the tenant's own rows", () => {
    const repo = repoFor(acme).projects;
    expect(repo.update("prj_a1", { status: "archived" })).toEqual({ id: "prj_a1", tenant_id: "ten_acme", name: "Acme roadmap", status: "archived" });
    expect(repo.delete("prj_a2")).toBe(true);
    expect(rawRow(host.file, "projects", "prj_a2")).toBeUndefined();
  });

  it("cannot move a row to another tenant", () => {
    expect(() => repoFor(acme).projects.update("prj_a1", { tenant_id: "ten_globex" })).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH" }));
    expect(rawRow(host.file, "projects", "prj_a1")?.tenant_id).toBe("ten_acme");
  });
});

describe("inserts", () => {
  it("set the tenant id from the context", () => {
    const row = repoFor(acme).projects.insert({ id: "prj_a3", name: "New" });
    expect(row).toEqual({ id: "prj_a3", tenant_id: "ten_acme", name: "New", status: "open" });
    expect(rawRow(host.file, "projects", "prj_a3")?.tenant_id).toBe("ten_acme");
  });

  it("throw for a row forged with another tenant id, and write nothing", () => {
    expect(() => repoFor(acme).projects.insert({ id: "prj_forged", tenant_id: "ten_globex", name: "Plant" })).toThrow(
      expect.objectContaining({ code: "TENANT_MISMATCH", field: "values.tenant_id" }),
    );
    expect(rawRow(host.file, "projects", "prj_forged")).toBeUndefined();
  });

  it("refuse columns the definition does not list, naming them", () => {
    expect(() => repoFor(acme).projects.insert({ id: "prj_x", name: "x", "owner; DROP TABLE projects": "y" } as Partial<Project>)).toThrow(
      expect.objectContaining({ code: "TENANT_SCOPE_INVALID", field: "values.owner; DROP TABLE projects" }),
    );
  });
});

describe("rows coming back are checked", () => {
  // The tenant column is COLLATE NOCASE: SQL's `tenant_id = 'ten_acme'` matches
  // this forged row, so only the repository's strict comparison stands between it and acme.
  beforeEach(() => host.db.prepare("INSERT INTO projects (id, tenant_id, name) VALUES ('prj_forged', 'TEN_ACME', 'Forged')").run());

  it("throws on a read that returned a forged row, and logs it", () => {
    expect(() => repoFor(acme).projects.findMany()).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH" }));
    expect(() => repoFor(acme).projects.findById("prj_forged")).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH" }));
    expect(violations[0]).toEqual({
      event: "tenant_row_mismatch", tenantId: "ten_acme", foundTenantId: "TEN_ACME", actorId: "usr_alice",
      requestId: "req_ten_acme_usr_alice", table: "projects", operation: "select", rowId: "prj_forged",
    });
  });

  it("rolls back a write that touched a forged row", () => {
    expect(() => repoFor(acme).projects.update("prj_forged", { name: "changed" })).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH" }));
    expect(() => repoFor(acme).projects.delete("prj_forged")).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH" }));
    expect(rawRow(host.file, "projects", "prj_forged")).toEqual({ id: "prj_forged", tenant_id: "TEN_ACME", name: "Forged", status: "open" });
    expect(violations.map((v) => v.operation)).toEqual(["update", "delete"]);
  });
});

describe("no repository without a trusted context", () => {
  const definitions = () => ({ database: sqliteDriver(host.db), tables: { projects } });

  it("is a type error for a missing or hand-built context", () => {
    // The compiler refuses these (npm run typecheck runs over this file);
    // at run time they throw, which the next test checks.
    // @ts-expect-error no context
    expect(() => createTenantRepo(undefined, definitions())).toThrow();
    // @ts-expect-error a literal is not a resolved context
    expect(() => createTenantRepo({ tenantId: "ten_acme" }, definitions())).toThrow();
  });

  it("throws at run time for none, a forged object, a copy and a cast", () => {
    const attempts: unknown[] = [undefined, null, {}, { tenantId: "ten_acme", actorId: "usr_alice" }, { ...acme }, JSON.parse(JSON.stringify(acme))];
    for (const context of attempts) {
      expect(() => createTenantRepo(context as TrustedTenantContext, definitions())).toThrow(expect.objectContaining({ code: "TENANT_CONTEXT_MISSING", field: "context" }));
    }
    expect(isTrustedContext(acme)).toBe(true);
  });

  it("cannot be re-pointed at another tenant after resolution", () => {
    expect(() => {
      (acme as { tenantId: string }).tenantId = "ten_globex";
    }).toThrow(TypeError);
    expect(repoFor(acme).projects.findById("prj_b1")).toBeUndefined();
  });

  it("names the definition field at fault", () => {
    expect(() => createTenantRepo(acme, { database: sqliteDriver(host.db), tables: { projects: { ...projects, tenantColumn: "owner" as "id" } } })).toThrow(
      expect.objectContaining({ code: "TENANT_SCOPE_INVALID", field: "tables.projects.tenantColumn" }),
    );
  });
});
