import { Ajv2020 } from "ajv/dist/2020.js";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { RawCheck } from "../decision/check-input.js";
import { DEMO_DATASET } from "../demo/demo-dataset.js";
import type { StoreSeed } from "../demo/store-seed.js";
import { UsageError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";
import { localTarget, type Outcome } from "./targets.js";

/**
 * Decision fixtures (schemas/decision-fixtures.schema.json): a store state and
 * Check requests with the exact decision each must get. The same files pin
 * behaviour in `bulkhead policy test` (compiled Wasm) and in the test suite
 * (Wasm, `opa eval` and a live gRPC server).
 */
export interface FixtureCase {
  name: string;
  request: RawCheck & { principal: Record<string, string> };
  expect: { allow: boolean; reasons?: string[] };
}

export interface FixtureFile {
  description: string;
  extends?: "demo";
  seed?: StoreSeed;
  cases: FixtureCase[];
}

export class FixtureError extends UsageError {
  override readonly name = "FixtureError";
}

const SCHEMA_PATH = join(PACKAGE_ROOT, "schemas", "decision-fixtures.schema.json");
let validator: ReturnType<Ajv2020["compile"]> | undefined;

/** Reads and validates one fixture file; errors name the file and the JSON path at fault. */
export function loadFixtureFile(path: string): FixtureFile {
  let document: unknown;
  try {
    document = parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new FixtureError(`${path}: ${(error as Error).message}`);
  }
  validator ??= new Ajv2020({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(SCHEMA_PATH, "utf8")));
  if (!validator(document)) {
    const problems = (validator.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "/"} ${e.message}`);
    throw new FixtureError(`${path} is not a valid decision fixture file:\n  ${problems.join("\n  ")}`);
  }
  return document as FixtureFile;
}

/** The fixture files of a directory (*.yaml, *.yml), sorted by name. */
export function fixtureFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new FixtureError(`no decision fixtures directory at ${dir}`);
  }
  return names.filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f));
}

/** The store state a fixture file describes: the demo dataset first when it extends it. */
export function fixtureSeeds(fixture: FixtureFile): StoreSeed[] {
  return [...(fixture.extends === "demo" ? [DEMO_DATASET] : []), ...(fixture.seed ? [fixture.seed] : [])];
}

export interface FixtureResult {
  file: string;
  name: string;
  expected: { allow: boolean; reasons: string[] };
  actual: Outcome;
  pass: boolean;
}

/** Runs every case of one file through the compiled Wasm of `bundleDir` on a fresh store. */
export async function runFixtureFile(path: string, bundleDir: string): Promise<FixtureResult[]> {
  const fixture = loadFixtureFile(path);
  const target = await localTarget(fixtureSeeds(fixture), bundleDir);
  try {
    const results: FixtureResult[] = [];
    for (const c of fixture.cases) {
      const expected = { allow: c.expect.allow, reasons: c.expect.reasons ?? [] };
      const actual = await target.check(c.request);
      const pass = !("error" in actual) && actual.allow === expected.allow && sameList(actual.reasons, expected.reasons);
      results.push({ file: path, name: c.name, expected, actual, pass });
    }
    return results;
  } finally {
    await target.close();
  }
}

/** A failure as an author reads it: what was expected, what came out. */
export function describeFailure(result: FixtureResult): string {
  const show = (o: Outcome) => ("error" in o ? `error ${o.error}` : `${o.allow ? "allow" : "deny"} [${o.reasons.join(", ")}]`);
  return [`FAIL ${result.name}`, `  expected: ${show(result.expected)}`, `  actual:   ${show(result.actual)}`].join("\n");
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
