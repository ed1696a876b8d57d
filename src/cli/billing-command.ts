import { status, type ServiceError } from "@grpc/grpc-js";
import { DEFAULTS, loadConfig } from "../config.js";
import { openDatabase } from "../store/database.js";
import { createSqliteStores } from "../store/stores.js";
import { connectionFlags, invokeAdmin, reportFailure, UsageError } from "./admin-command.js";

/**
 * `bulkhead billing replay|reconcile|recalculate|events` (ADR 84): the
 * billing operations of AdminService (ADR 78) over gRPC with the caller's
 * token, like `bulkhead admin` and `bulkhead flags`. One path in both modes:
 * each write is a command, so in replicated mode a call on any sidecar
 * reaches every sidecar, and the CLI can do nothing the API would refuse.
 * Only `events --unmapped` still reads the file: ListBillingEvents is per
 * tenant, and an unmapped event names none.
 */
export const BILLING_USAGE = `bulkhead billing - billing operations over AdminService (audited like the API)

Usage:
  bulkhead billing reconcile --reason CODE[: text] [--apply]
      the sidecar lists every subscription from Stripe (BULKHEAD_STRIPE_API_KEY,
      BULKHEAD_STRIPE_API_URL on the sidecar) and prints the drift of its mirror;
      writes nothing unless --apply, which repairs it on every sidecar (billing.write)
  bulkhead billing replay <event-id> --reason CODE[: text]
      re-apply a stored Stripe event (billing.write); watermarks still apply
  bulkhead billing recalculate --tenant-id ID --reason CODE[: text]
      re-derive a tenant's plan, billing status and seats from its subscriptions (billing.write)
  bulkhead billing events --tenant-id ID [--limit N]
      a tenant's recent Stripe events and what became of each (tenants.read; N up to 200)
  bulkhead billing events --unmapped [--db FILE]
      stored events that named no known tenant, read from the file (writes nothing)

CODE is an admin reason code (BULKHEAD_ADMIN_REASON_CODES on the sidecar), e.g.
  --reason "billing_correction: customer mapped late"
A write prints the store revision it took: pass it as min_revision to a Check
on any sidecar to read your write there.

Connection flags as for bulkhead admin: --addr HOST:PORT (BULKHEAD_GRPC_ADDR,
default ${DEFAULTS.grpcAddr}), --token-file FILE (BULKHEAD_ADMIN_TOKEN_FILE), --token,
--db (only to find admin.token), --as NAME.
`;

const VALUE_FLAGS = ["reason", "tenant-id", "limit"];
const SWITCHES = ["apply", "dry-run", "unmapped"];

export async function billingCommand(args: string[]): Promise<number> {
  const [sub, ...tail] = args;
  if (!sub || sub === "--help" || sub === "-h") {
    (sub ? process.stdout : process.stderr).write(BILLING_USAGE);
    return sub ? 0 : 2;
  }
  const prefix = `bulkhead billing ${sub}`;
  let addr = process.env.BULKHEAD_GRPC_ADDR ?? DEFAULTS.grpcAddr;
  try {
    const { connection, rest } = connectionFlags(tail);
    addr = connection.addr ?? addr;
    const { options, positionals } = billingFlags(rest);
    const run = SUBCOMMANDS[sub];
    if (!run) {
      process.stderr.write(`bulkhead billing: unknown command '${sub}'\n\n${BILLING_USAGE}`);
      return 2;
    }
    return await run({ options, positionals, connection });
  } catch (error) {
    return reportBillingFailure(prefix, error, addr);
  }
}

interface Invocation {
  options: Record<string, string | true>;
  positionals: string[];
  connection: Record<string, string>;
}

const call = invokeAdmin;

const SUBCOMMANDS: Record<string, (i: Invocation) => Promise<number>> = {
  async reconcile({ options, positionals, connection }) {
    noPositionals("reconcile", positionals);
    if (options.apply && options["dry-run"]) throw new UsageError("--apply and --dry-run contradict each other (a dry run is the default)");
    const apply = options.apply === true;
    const response = await call("ReconcileBilling", { dry_run: !apply, reason: requiredReason(options) }, connection);
    for (const d of response.drift as { subscription_id: string; tenant_id: string; changes_json: string }[]) {
      const changes = Object.entries(JSON.parse(d.changes_json) as Record<string, [unknown, unknown]>)
        .map(([field, [from, to]]) => `${field}: ${JSON.stringify(from)} -> ${JSON.stringify(to)}`);
      console.log(`${d.subscription_id} (${d.tenant_id}): ${changes.join(", ")}`);
    }
    for (const id of response.unmapped as string[]) console.log(`${id}: no tenant maps to this subscription's customer; skipped`);
    const outcome = response.applied ? `repaired at revision ${response.store_revision}`
      : !apply ? "dry run: nothing written (--apply repairs it)" : "nothing to repair";
    console.log(`${response.checked} subscriptions checked, ${response.drift.length} drifted, ${outcome}`);
    return 0;
  },

  async replay({ options, positionals, connection }) {
    const [eventId, ...extra] = positionals;
    if (!eventId || extra.length > 0) throw new UsageError("name one stored event: bulkhead billing replay <event-id> --reason CODE[: text]");
    const r = await call("ReplayBillingEvent", { event_id: eventId, reason: requiredReason(options) }, connection);
    console.log(`${eventId}: ${r.outcome}${r.tenant_id ? ` for ${r.tenant_id}` : ""} at revision ${r.store_revision}`);
    return 0;
  },

  async recalculate({ options, positionals, connection }) {
    noPositionals("recalculate", positionals);
    const tenantId = requiredValue(options, "tenant-id", "bulkhead billing recalculate --tenant-id ID --reason CODE");
    const r = await call("RecalculateEntitlements", { tenant_id: tenantId, reason: requiredReason(options) }, connection);
    console.log(`${tenantId}: ${r.changed ? "recalculated" : "unchanged"} at revision ${r.store_revision}`);
    return 0;
  },

  async events({ options, positionals, connection }) {
    noPositionals("events", positionals);
    if (options.unmapped) return unmappedEvents(options, connection);
    const tenantId = requiredValue(options, "tenant-id", "bulkhead billing events --tenant-id ID (or --unmapped)");
    const r = await call("ListBillingEvents", { tenant_id: tenantId, limit: limitOption(options.limit) }, connection);
    for (const e of r.events as { event_id: string; type: string; outcome: string; created: number }[]) {
      console.log([e.event_id, e.type, e.outcome, new Date(e.created).toISOString()].join("\t"));
    }
    return 0;
  },
};

/** Read-only: the stored events no tenant claimed, from the file (--db). */
async function unmappedEvents(options: Record<string, string | true>, connection: Record<string, string>): Promise<number> {
  if (options["tenant-id"]) throw new UsageError("--unmapped lists events that named no tenant: drop --tenant-id");
  const db = openDatabase(loadConfig(process.env, connection.db ? { db: connection.db } : {}).dbPath);
  try {
    for (const e of createSqliteStores(db).billing.eventsWithOutcome("unmapped")) console.log(`${e.eventId}\t${e.type}`);
    return 0;
  } finally {
    db.close();
  }
}

/** The billing flags: --reason/--tenant-id/--limit take a value, --apply/--dry-run/--unmapped none. */
function billingFlags(args: string[]): { options: Record<string, string | true>; positionals: string[] } {
  const options: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--")) positionals.push(arg);
    else if (SWITCHES.includes(arg.slice(2))) options[arg.slice(2)] = true;
    else if (VALUE_FLAGS.includes(arg.slice(2))) {
      const value = args[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`${arg} needs a value`);
      options[arg.slice(2)] = value;
    } else throw new UsageError(`unknown flag ${arg} (see bulkhead billing --help)`);
  }
  return { options, positionals };
}

function requiredReason(options: Record<string, string | true>): string {
  return requiredValue(options, "reason", "--reason CODE[: text], CODE one of the sidecar's BULKHEAD_ADMIN_REASON_CODES, e.g. billing_correction");
}

function requiredValue(options: Record<string, string | true>, name: string, example: string): string {
  const value = options[name];
  if (typeof value !== "string" || value.trim() === "") throw new UsageError(`--${name} is required (field ${name.replace(/-/g, "_")}): ${example}`);
  return value;
}

function noPositionals(sub: string, positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (see bulkhead billing ${sub} --help)`);
}

/** `--limit N`: 1 to 200 in decimal digits; absent = the server's default (0 on the wire). */
function limitOption(value: string | true | undefined): number {
  if (value === undefined) return 0;
  const n = typeof value === "string" && /^[0-9]{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 200)) throw new UsageError(`--limit ${String(value)}: must be a whole number from 1 to 200 (field limit)`);
  return n;
}

/**
 * As reportFailure, but a sidecar that does not answer is named instead of
 * gRPC's status text. The sidecar's own UNAVAILABLE answers (STORE_BUSY,
 * REPLICATION_UNAVAILABLE) carry an error-code trailer and keep their text.
 */
function reportBillingFailure(prefix: string, error: unknown, addr: string): number {
  const e = error as ServiceError;
  if (e.code === status.UNAVAILABLE && !e.metadata?.get("bulkhead-error-code")[0]) {
    process.stderr.write(`${prefix}: no sidecar answers at ${addr} (start bulkhead serve, or pass --addr HOST:PORT / BULKHEAD_GRPC_ADDR)\n`);
    return 1;
  }
  return reportFailure(prefix, error);
}
