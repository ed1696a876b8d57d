import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";

// Ship what you test: a production install (`npm ci --omit=dev`, the
// Dockerfile's runtime stage) has only `dependencies`. A devDependency
// imported anywhere under src/ works in every test and breaks the shipped
// sidecar (yaml, imported by the xtest suite loader, once did exactly that).
// .ci/run also starts the packed project from a production-only install.
const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8"));
const runtime = new Set(Object.keys(pkg.dependencies ?? {}));
// An optional peer (kysely) is the host's own package: only the adapter entry
// named after it (src/client/kysely/, `bulkhead/client/kysely`) may load it,
// and client-imports.test.ts checks that bulkhead/client never reaches it.
const optionalPeers = Object.entries(pkg.peerDependenciesMeta ?? {}).filter(([, meta]) => (meta as { optional?: boolean }).optional).map(([name]) => name);
const peerAdapterMayLoad = (file: string, pkgName: string) =>
  optionalPeers.includes(pkgName) && relative(join(PACKAGE_ROOT, "src", "client", pkgName), file).split("/")[0] !== "..";

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

/** Bare specifiers a module loads at run time: static imports and re-exports (not `import type`), dynamic imports, require.resolve. */
export function runtimeSpecifiers(source: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /(?:^|\n)\s*(?:import|export)\s+(?!type\s)(?:[^;"']*?\sfrom\s+)?["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire(?:\.resolve)?\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.add(match[1]!);
  return [...found].filter((s) => !s.startsWith(".") && !s.startsWith("/"));
}

const packageOf = (specifier: string) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");
const isBuiltin = (specifier: string) => specifier.startsWith("node:") || builtinModules.includes(specifier);

describe("runtime dependencies", () => {
  it("finds static, dynamic and re-exported imports but not type-only ones", () => {
    const source = `import type { A } from "types-only";\nimport { b } from "static-one";\nexport { c } from "@scope/re-export/sub";\nconst d = await import("dynamic-one");\nimport "side-effect";`;
    expect(runtimeSpecifiers(source).map(packageOf).sort()).toEqual(["@scope/re-export", "dynamic-one", "side-effect", "static-one"]);
  });

  it("every package imported under src/ is a runtime dependency", () => {
    const missing: string[] = [];
    for (const file of sourceFiles(join(PACKAGE_ROOT, "src"))) {
      for (const specifier of runtimeSpecifiers(readFileSync(file, "utf8"))) {
        if (!isBuiltin(specifier) && !runtime.has(packageOf(specifier)) && !peerAdapterMayLoad(file, packageOf(specifier))) missing.push(`${relative(PACKAGE_ROOT, file)}: ${specifier}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
