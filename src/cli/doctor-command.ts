import { existsSync, readdirSync } from "node:fs";
import { connect } from "node:net";
import { basename, dirname } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { processAlive } from "../audit/decision-log.js";
import { ENV_VARS, loadConfig, type Config } from "../config.js";
import { resolveSettings, SETTING_OPTIONS, type ResolvedSettings, type SettingSource } from "../config-sources.js";
import { readPolicyBundle } from "../engine/policy-bundle.js";
import { PolicySet } from "../engine/policy-set.js";
import { secretScrubber } from "../log/secret-scrubber.js";
import { MIGRATIONS } from "../store/migrations.js";
import { readRevision } from "../store/revision-writer.js";

export const DOCTOR_USAGE = `bulkhead doctor - what a sidecar with this configuration would run on, and whether it can

Usage:
  bulkhead doctor [serve's flags, --config FILE] [--json]

Reads the configuration exactly as \`bulkhead serve\` does (the same flags, BULKHEAD_*
variables and config file), prints every setting with where it came from (secrets masked: only whether they
are set and how many values), then checks:
  config    it loads (an unknown BULKHEAD_* variable or a bad value is named)
  store     the SQLite file: schema version, store revision, decisions kept, journals waiting
            for import, PRAGMA quick_check; opened read only, never created or migrated
  policy    the compiled bundle: its revision, and that it loads and passes its smoke cases
  sidecar   a sidecar answering on the HTTP address: its /healthz, dependency by dependency
  nats      replicated mode: each NATS server accepts a TCP connection
  stripe    webhook signing secrets and API key are configured

Exit codes: 0 nothing failed (warnings allowed), 1 a check failed, 2 usage error.
`;

type Outcome = "ok" | "warn" | "fail" | "skip";
interface CheckResult {
  check: string;
  outcome: Outcome;
  detail: string;
}
interface Setting {
  variable: string;
  value: string;
  source: SettingSource | "default";
}

/** Values of these variables are credentials: doctor shows only that they are set. */
const SECRET = /TOKEN|SECRET|API_KEY/;
const PROBE_MS = 1_000;
const scrub = secretScrubber([]);


export async function doctorCommand(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(DOCTOR_USAGE);
    return 0;
  }
  const { values } = parseArgs({ args, options: { ...SETTING_OPTIONS, json: { type: "boolean" } }, strict: true });
  const { json, ...flags } = values;
  let config: Config;
  let settings: ResolvedSettings;
  try {
    settings = resolveSettings(process.env, flags);
    config = loadConfig(settings.env);
  } catch (error) {
    return report([], [{ check: "config", outcome: "fail", detail: scrub((error as Error).message) }], json);
  }
  const checks: CheckResult[] = [{ check: "config", outcome: "ok", detail: "loads" }];
  checks.push(checkStore(config.dbPath));
  checks.push(await checkPolicy(config));
  checks.push(await checkSidecar(config.httpAddr));
  checks.push(...(await checkNats(config)));
  checks.push(checkStripe(config));
  return report(shownSettings(config, settings), checks, json);
}

function shownSettings(config: Config, settings: ResolvedSettings): Setting[] {
  return Object.entries(ENV_VARS).map(([variable, path]) => {
    const source = settings.sources[variable] ?? "default";
    const value = path.split(".").reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], config);
    return { variable, value: shown(variable, value), source };
  });
}

function shown(variable: string, value: unknown): string {
  if (SECRET.test(variable) && !variable.endsWith("_FILE")) {
    const count = Array.isArray(value) ? value.length : value ? 1 : 0;
    return count === 0 ? "(not set)" : `(set: ${count} value${count === 1 ? "" : "s"}, masked)`;
  }
  if (value === undefined || value === null || value === "") return "(not set)";
  // A URL's user:password (nats://user:pass@host) is a credential too.
  return scrub(Array.isArray(value) ? value.join(",") : String(value));
}

function checkStore(path: string): CheckResult {
  if (!existsSync(path)) return { check: "store", outcome: "warn", detail: `${path} does not exist yet (serve creates it)` };
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    return { check: "store", outcome: "fail", detail: `${path}: ${(error as Error).message}` };
  }
  try {
    return storeFacts(db, path);
  } catch (error) {
    return { check: "store", outcome: "fail", detail: `${path}: ${(error as Error).message}` };
  } finally {
    db.close();
  }
}

function storeFacts(db: Database.Database, path: string): CheckResult {
  {
    const schema = db.pragma("user_version", { simple: true }) as number;
    const latest = MIGRATIONS.at(-1)!.version;
    if (schema > latest) return { check: "store", outcome: "fail", detail: `${path}: schema ${schema} is newer than this build knows (${latest}); upgrade bulkhead` };
    const integrity = db.pragma("quick_check", { simple: true }) as string;
    if (integrity !== "ok") return { check: "store", outcome: "fail", detail: `${path}: quick_check says ${integrity}` };
    if (schema === 0) return { check: "store", outcome: "warn", detail: `${path}: empty (serve migrates it to schema ${latest})` };
    const revision = readRevision(db);
    const decisions = db.prepare("SELECT count(*) FROM decision_log").pluck().get() as number;
    const left = leftJournals(path);
    const pending = schema < latest ? `; schema ${schema}, serve migrates it to ${latest}` : `; schema ${schema}`;
    return {
      check: "store", outcome: "ok",
      detail: `${path}: revision ${revision}, ${decisions} decisions kept, ${left} journal(s) of stopped processes waiting for import${pending}, quick_check ok`,
    };
  }
}

/**
 * Decision journals (`<db>.decisions-<pid>.journal`) whose process is gone:
 * their records are imported at the next start. A running process's own
 * journal is its write-ahead buffer, not a backlog.
 */
function leftJournals(path: string): number {
  const prefix = `${basename(path)}.decisions-`;
  return readdirSync(dirname(path)).filter((name) => {
    if (!name.startsWith(prefix) || !name.endsWith(".journal")) return false;
    const pid = Number(name.slice(prefix.length, -".journal".length));
    return !Number.isInteger(pid) || !processAlive(pid);
  }).length;
}

async function checkPolicy(config: Config): Promise<CheckResult> {
  let set: PolicySet | undefined;
  try {
    const bundle = await readPolicyBundle(config.policyDir);
    set = await PolicySet.load(bundle, { smokeTest: true, evaluation: { workers: 1, budgetMs: Math.max(config.policyBudgetMs ?? 250, 2_000) } });
    return { check: "policy", outcome: "ok", detail: `${config.policyDir}: revision ${bundle.revision}, loads and passes its smoke cases` };
  } catch (error) {
    return { check: "policy", outcome: "fail", detail: `${config.policyDir}: ${(error as Error).message}` };
  } finally {
    await set?.close();
  }
}

async function checkSidecar(httpAddr: string): Promise<CheckResult> {
  const url = `http://${httpAddr}/healthz`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(PROBE_MS) });
  } catch {
    return { check: "sidecar", outcome: "warn", detail: `nothing answers ${url} (not running, or on another address)` };
  }
  const body = (await response.json().catch(() => null)) as SidecarHealth | null;
  if (!body) return { check: "sidecar", outcome: "fail", detail: `${url}: ${response.status}, not the sidecar's JSON` };
  const parts = [
    `policy ${body.policy?.state ?? "?"}${body.policy?.revision ? ` ${body.policy.revision}` : ""}`,
    `store ${body.store?.intact === false ? "failed" : body.store?.writable ? "writable" : `not writable${body.store?.problem ? ` (${body.store.problem})` : ""}`}`,
    body.store?.write_lock ? `write lock held (${body.store.write_lock})` : "",
    `audit ${body.audit?.problem ? body.audit.problem : "ok"}`,
  ].filter(Boolean);
  const outcome: Outcome = body.status === "ok" ? "ok" : body.status === "degraded" ? "warn" : "fail";
  return { check: "sidecar", outcome, detail: `${url}: ${body.status}; ${parts.join("; ")}` };
}

/** The parts of /healthz (src/server/http/http-server.ts) doctor shows. */
interface SidecarHealth {
  status?: string;
  policy?: { state?: string; revision?: string | null };
  store?: { intact?: boolean; writable?: boolean; problem?: string | null; write_lock?: string | null };
  audit?: { problem?: string | null };
}

async function checkNats(config: Config): Promise<CheckResult[]> {
  if (!config.replication) return [{ check: "nats", outcome: "skip", detail: "single-node mode (BULKHEAD_NATS_URL not set)" }];
  return Promise.all(
    config.replication.natsServers.map(async (server) => {
      const { hostname, port } = new URL(server.includes("://") ? server : `nats://${server}`);
      const reached = await tcpReachable(hostname, Number(port || 4222));
      return { check: "nats", outcome: reached ? "ok" : "fail", detail: `${scrub(server)}: ${reached ? "accepts connections" : `no connection within ${PROBE_MS} ms`}` } as CheckResult;
    }),
  );
}

function tcpReachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_MS, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

function checkStripe(config: Config): CheckResult {
  const secrets = config.stripeWebhookSecrets.length;
  if (secrets === 0) return { check: "stripe", outcome: "warn", detail: "no webhook signing secret (BULKHEAD_STRIPE_WEBHOOK_SECRETS): every webhook is refused" };
  const api = config.stripeApiKey ? "API key set (reconcile can reach Stripe)" : "no API key (billing reconcile cannot reach Stripe)";
  return { check: "stripe", outcome: "ok", detail: `${secrets} webhook signing secret(s); ${api}` };
}

function report(config: Setting[], checks: CheckResult[], json: boolean | undefined): number {
  const failed = checks.some((c) => c.outcome === "fail");
  if (json) {
    console.log(JSON.stringify({ ok: !failed, config, checks }, null, 2));
    return failed ? 1 : 0;
  }
  if (config.length > 0) {
    console.log("configuration");
    const width = Math.max(...config.map((s) => s.variable.length));
    for (const s of config) console.log(`  ${s.variable.padEnd(width)}  ${s.value}${s.source === "default" ? "" : `  (${s.source})`}`);
    console.log("");
  }
  console.log("checks");
  for (const c of checks) console.log(`  ${c.outcome.padEnd(4)}  ${c.check.padEnd(7)}  ${c.detail}`);
  return failed ? 1 : 0;
}
