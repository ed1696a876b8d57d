import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";

// bulkhead/client runs inside host services: loading it must not drag in the
// sidecar's server, its SQLite driver or its policy engine (native builds,
// megabytes of Wasm, a web framework). This walks the import graph of the
// built entry exactly as Node would load it.
const FORBIDDEN_PACKAGES = ["better-sqlite3", "@open-policy-agent/opa-wasm", "fastify"];
const SERVER_DIR = join(PACKAGE_ROOT, "dist", "src", "server");

/** Every file of ours and every package a built module loads at run time, following relative imports. */
export function importGraph(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, "utf8");
    // Built JS: `import type` is gone; static imports, re-exports and dynamic imports remain.
    const patterns = [/(?:^|\n)\s*(?:import|export)\s+(?:[^;"']*?\sfrom\s+)?["']([^"']+)["']/g, /\bimport\(\s*["']([^"']+)["']\s*\)/g];
    for (const pattern of patterns) {
      for (const [, specifier] of source.matchAll(pattern)) {
        if (specifier!.startsWith(".")) visit(resolve(dirname(file), specifier!));
        else if (!specifier!.startsWith("node:")) packages.add(specifier!.startsWith("@") ? specifier!.split("/").slice(0, 2).join("/") : specifier!.split("/")[0]!);
      }
    }
  };
  visit(entry);
  return { files: [...files].map((f) => relative(PACKAGE_ROOT, f)), packages: [...packages].sort() };
}

beforeAll(() => {
  if (!existsSync(join(PACKAGE_ROOT, "dist", "src", "client", "index.js"))) {
    execFileSync(join(PACKAGE_ROOT, "node_modules", ".bin", "tsc"), ["-p", join(PACKAGE_ROOT, "tsconfig.build.json")], { stdio: "inherit" });
  }
});

describe("bulkhead/client import graph", () => {
  const reaches = (entry: string) => importGraph(join(PACKAGE_ROOT, "dist", "src", entry, "index.js"));

  it("loads neither the server, SQLite, the Wasm engine nor fastify", () => {
    const { files, packages } = reaches("client");
    expect(packages.filter((p) => FORBIDDEN_PACKAGES.includes(p))).toEqual([]);
    expect(files.filter((f) => join(PACKAGE_ROOT, f).startsWith(SERVER_DIR))).toEqual([]);
    expect(packages).toContain("@grpc/grpc-js");
  });

  it("loads neither express nor fastify from the framework adapters: the host brings its own", () => {
    for (const entry of ["client/express", "client/fastify"]) {
      const { files, packages } = reaches(entry);
      expect(packages.filter((p) => [...FORBIDDEN_PACKAGES, "express"].includes(p))).toEqual([]);
      expect(files.filter((f) => join(PACKAGE_ROOT, f).startsWith(SERVER_DIR))).toEqual([]);
    }
  });

  it("finds them from bulkhead/embedded, which does carry the engine (the walk can see them)", () => {
    const { files, packages } = reaches("embedded");
    expect(packages).toEqual(expect.arrayContaining(["better-sqlite3", "@open-policy-agent/opa-wasm"]));
    expect(files.some((f) => join(PACKAGE_ROOT, f).startsWith(SERVER_DIR))).toBe(true);
  });

  it("keeps the adapters to what they name: none for sqlite (the host's database is a parameter), kysely for kysely", () => {
    const sqlite = reaches("client/sqlite");
    expect(sqlite.packages).toEqual([]);
    const kysely = reaches("client/kysely");
    expect(kysely.packages).toEqual(["kysely"]);
    for (const { files } of [sqlite, kysely]) expect(files.filter((f) => join(PACKAGE_ROOT, f).startsWith(SERVER_DIR))).toEqual([]);
    // And bulkhead/client itself never loads the optional peer.
    expect(reaches("client").packages).not.toContain("kysely");
  });

  it("declares kysely an optional peer, so a production install does not need it", () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"));
    expect(pkg.dependencies.kysely).toBeUndefined();
    expect(pkg.peerDependencies.kysely).toMatch(/\S/);
    expect(pkg.peerDependenciesMeta.kysely).toEqual({ optional: true });
  });

  it("imports as a user imports it: import(\"bulkhead/client\")", () => {
    const script = 'const { BulkheadClient } = await import("bulkhead/client"); const c = new BulkheadClient({ address: "127.0.0.1:1" }); await c.close(); console.log(typeof BulkheadClient);';
    expect(execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: PACKAGE_ROOT, encoding: "utf8" }).trim()).toBe("function");
  });

  it("is what package.json exports, with types", () => {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"));
    for (const [name, entry] of [[".", "index"], ["./client", "client/index"], ["./client/sqlite", "client/sqlite/index"], ["./client/kysely", "client/kysely/index"], ["./client/express", "client/express/index"], ["./client/fastify", "client/fastify/index"], ["./embedded", "embedded/index"]] as const) {
      expect(pkg.exports[name]).toEqual({ types: `./dist/src/${entry}.d.ts`, default: `./dist/src/${entry}.js` });
      expect(existsSync(join(PACKAGE_ROOT, "dist", "src", `${entry}.d.ts`))).toBe(true);
    }
  });
});
