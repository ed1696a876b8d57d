import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import { validateCheck, type RawCheck } from "../decision/check-input.js";
import { DEMO_DATASET } from "../demo/demo-dataset.js";
import type { StoreSeed } from "../demo/store-seed.js";
import { buildPolicyInput, type PolicyInput } from "../engine/policy-input.js";
import { UsageError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";
import { fixtureSeeds, loadFixtureFile } from "../xtest/decision-fixtures.js";
import { localTarget } from "../xtest/targets.js";
import { opaPath } from "./opa-cli.js";

export const POLICY_EXPLAIN_USAGE = `bulkhead policy explain - why one request is allowed or denied

Usage:
  bulkhead policy explain --request FILE|JSON [--db FILE | --demo] [--src DIR] [--bundle DIR]
  bulkhead policy explain --fixture FILE --case NAME [--src DIR] [--bundle DIR]

Builds the policy input exactly as the sidecar does (the store's tenant, membership,
plan, billing and usage for the principal), then prints:
  - the input the policy sees;
  - every rule that fired, with its file and line (from opa eval --explain on DIR);
  - the decision and the reasons of the compiled Wasm bundle, and whether opa eval agrees.

Options:
  --request FILE|JSON  a Check request (camelCase, as the gRPC API takes it): a .json/.yaml
                       file, '-' for stdin, or inline JSON
  --db FILE            the store to read (default: ./data/bulkhead.db); opened, never changed
  --demo               use a scratch store with the demo dataset instead
  --fixture FILE       a decision fixture file: its store state, and with --case its request
  --case NAME          the fixture case to explain (its expected decision is shown too)
  --src DIR            Rego sources for the trace (default: the package's policies/)
  --bundle DIR         compiled bundle for the decision (default: the package's dist/policies)
`;

interface OpaExplainEvent {
  Op: string;
  Node: unknown;
  Location?: { file: string; row: number };
}

export async function policyExplainCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      request: { type: "string" },
      db: { type: "string" },
      demo: { type: "boolean" },
      fixture: { type: "string" },
      case: { type: "string" },
      src: { type: "string" },
      bundle: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(POLICY_EXPLAIN_USAGE);
    return 0;
  }
  const src = resolve(values.src ?? join(PACKAGE_ROOT, "policies"));
  const bundle = resolve(values.bundle ?? join(PACKAGE_ROOT, "dist", "policies"));
  const { request, seeds, db, expected } = chooseStoreAndRequest(values);

  const target = await localTarget(seeds, bundle, db);
  try {
    const check = validateCheck(request);
    const input = buildPolicyInput(check, target.core.resolver.resolve(check.principal));
    const decision = await target.core.decider.check(check);
    const trace = explainWithOpa(src, input);

    console.log("input:");
    console.log(indent(JSON.stringify(input, null, 2)));
    console.log(`\nrules that fired (opa eval --explain on ${shortPath(src)}):`);
    for (const line of firedRules(trace.events, src)) console.log(`  ${line}`);
    console.log(`\ndecision (Wasm bundle ${decision.policyRevision}): ${decision.allow ? "ALLOW" : "DENY"}`);
    if (decision.reasons.length === 0) console.log("  no reasons");
    decision.reasons.forEach((r, i) => console.log(`  ${i + 1}. ${r.code}: ${r.message}`));
    const agree = trace.result.allow === decision.allow && trace.result.reasons.map((r) => r.code).join() === decision.reasons.map((r) => r.code).join();
    console.log(agree ? "opa eval on the sources agrees" : `opa eval on the sources DISAGREES: ${trace.result.allow ? "allow" : "deny"} [${trace.result.reasons.map((r) => r.code).join(", ")}] (is the bundle built from these sources?)`);
    if (expected) {
      const pass = expected.allow === decision.allow && (expected.reasons ?? []).join() === decision.reasons.map((r) => r.code).join();
      console.log(`fixture expects: ${expected.allow ? "allow" : "deny"} [${(expected.reasons ?? []).join(", ")}] -> ${pass ? "pass" : "FAIL"}`);
    }
    return 0;
  } finally {
    await target.close();
  }
}

function chooseStoreAndRequest(values: { request?: string; db?: string; demo?: boolean; fixture?: string; case?: string }): {
  request: RawCheck;
  seeds: StoreSeed[];
  db?: string;
  expected?: { allow: boolean; reasons?: string[] };
} {
  if (values.fixture) {
    if (values.db || values.demo) throw new UsageError("--fixture brings its own store: drop --db/--demo");
    const fixture = loadFixtureFile(values.fixture);
    const chosen = values.case === undefined ? undefined : fixture.cases.find((c) => c.name === values.case);
    if (values.case !== undefined && !chosen) {
      throw new UsageError(`no case named '${values.case}' in ${values.fixture}; cases: ${fixture.cases.map((c) => `'${c.name}'`).join(", ")}`);
    }
    if (!chosen && !values.request) throw new UsageError("--fixture needs --case NAME or --request");
    return { request: chosen?.request ?? readRequest(values.request!), seeds: fixtureSeeds(fixture), expected: chosen?.expect };
  }
  if (!values.request) throw new UsageError("--request is required (or --fixture FILE --case NAME); see bulkhead policy explain --help");
  if (values.demo) {
    if (values.db) throw new UsageError("--demo and --db are exclusive");
    return { request: readRequest(values.request), seeds: [DEMO_DATASET] };
  }
  const db = resolve(values.db ?? join("data", "bulkhead.db"));
  if (!existsSync(db)) throw new UsageError(`no store at ${db}; pass --db FILE, --demo, or --fixture FILE`);
  return { request: readRequest(values.request), seeds: [], db };
}

function readRequest(value: string): RawCheck {
  const text = value.trim().startsWith("{") ? value : readFileSync(value === "-" ? 0 : value, "utf8");
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new UsageError(`--request: not JSON or YAML: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null) throw new UsageError("--request: expected an object with principal, action and resource");
  return parsed as RawCheck;
}

/** `opa eval --explain full` of the decision on the Rego sources, for the trace and a second opinion. */
function explainWithOpa(src: string, input: PolicyInput): { events: OpaExplainEvent[]; result: { allow: boolean; reasons: { code: string }[] } } {
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-explain-"));
  try {
    writeFileSync(join(dir, "input.json"), JSON.stringify(input));
    const output = execFileSync(opaPath(), ["eval", "--format", "json", "--explain", "full", "-d", src, "-i", join(dir, "input.json"), "data.bulkhead.decision"], {
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
    });
    const parsed = JSON.parse(output) as { result: { expressions: { value: { allow: boolean; reasons: { code: string }[] } }[] }[]; explanation: OpaExplainEvent[] };
    return { events: parsed.explanation, result: parsed.result[0]!.expressions[0]!.value };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Rules whose body succeeded ("Exit" of a rule node), once each, in the order
 * they fired, as `file:line  source`. For a `violations contains reason(...)`
 * rule the source shows the reason code it adds.
 */
function firedRules(events: OpaExplainEvent[], src: string): string[] {
  const seen = new Set<string>();
  const lines: string[] = [];
  const sources = new Map<string, string[]>();
  for (const event of events) {
    const node = event.Node as { head?: { name?: string } } | null;
    if (event.Op !== "Exit" || !event.Location?.file || typeof node !== "object" || node === null || Array.isArray(node) || !node.head?.name) continue;
    const where = `${relative(src, resolve(event.Location.file))}:${event.Location.row}`;
    if (seen.has(where)) continue;
    seen.add(where);
    if (!sources.has(event.Location.file)) sources.set(event.Location.file, readFileSync(event.Location.file, "utf8").split("\n"));
    lines.push(`${where.padEnd(28)} ${ruleHead(sources.get(event.Location.file)!, event.Location.row - 1)}`);
  }
  return lines;
}

/** The rule's head, joined over the lines it spans, up to its body. */
function ruleHead(source: string[], index: number): string {
  let head = "";
  for (let i = index; i < source.length && i < index + 4; i++) {
    head += ` ${source[i]!.trim()}`;
    if (/\bif\b|\{$|:=|=/.test(source[i]!)) break;
  }
  const text = head.trim().replace(/\s+if\s*\{?$/, "").replace(/\(\s+/g, "(");
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

function shortPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith("..") ? path : rel || ".";
}

const indent = (text: string) => text.replace(/^/gm, "  ");
