import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { decisionsAfter, queryDecisions, QUERY_PAGE_MAX, type DecisionFilter, type DecisionView } from "../audit/decision-query.js";
import { DEFAULTS } from "../config.js";
import { time } from "./audit-command.js";
import { UsageError } from "../errors.js";
import { openDatabase, type Db } from "../store/database.js";

export const DECISIONS_USAGE = `bulkhead decisions - read the decision log of a sidecar's store

Usage:
  bulkhead decisions query [filters] [--limit N] [--json]
      matching decisions, newest first (default 50, at most ${QUERY_PAGE_MAX})
  bulkhead decisions tail [filters] [--lines N] [--follow] [--json]
      the last N matching decisions (default 10), oldest first; --follow keeps printing
      new ones as the sidecar logs them (within about 100 ms of their answer), until Ctrl-C

Filters:
  --tenant ID        the principal's tenant (AdminService.QueryDecisions requires one; here
                     on the sidecar's host, where the file is readable anyway, it is optional)
  --actor ID  --action NAME  --decision ID  --reason CODE  --result allow|deny
  --since TIME  --until TIME   ISO 8601 (2026-11-01, 2026-11-01T12:00:00Z); since inclusive, until exclusive
  --db FILE          the sidecar's store (BULKHEAD_DB, default ${DEFAULTS.dbPath}); read only

Lines: time, decision id, tenant, actor, action, resource type/id, allow|deny, reasons.
--json prints one JSON object per decision (the shape of \`bulkhead audit export\`).
Exit codes: 0 done, 2 usage error.
`;

const FOLLOW_POLL_MS = 250;

export async function decisionsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === "--help" || sub === "-h") {
    (sub ? process.stdout : process.stderr).write(DECISIONS_USAGE);
    return sub ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      db: { type: "string" },
      tenant: { type: "string" },
      actor: { type: "string" },
      action: { type: "string" },
      decision: { type: "string" },
      reason: { type: "string" },
      result: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      limit: { type: "string" },
      lines: { type: "string" },
      follow: { type: "boolean" },
      json: { type: "boolean" },
    },
  });
  if (values.result !== undefined && values.result !== "allow" && values.result !== "deny") throw new UsageError(`--result: '${values.result}' must be allow or deny`);
  const filter: DecisionFilter = {
    tenantId: values.tenant, actorId: values.actor, action: values.action, decisionId: values.decision, reason: values.reason,
    result: values.result, since: time(values.since, "--since"), until: time(values.until, "--until"),
  };
  const print = (d: DecisionView) => console.log(values.json ? JSON.stringify(d) : line(d));
  const db = openExisting(values.db ?? process.env.BULKHEAD_DB ?? DEFAULTS.dbPath);
  try {
    switch (sub) {
      case "query": {
        for (const d of queryDecisions(db, filter, { size: count(values.limit, "--limit", 50) }).decisions) print(d);
        return 0;
      }
      case "tail": {
        const last = queryDecisions(db, filter, { size: count(values.lines, "--lines", 10) }).decisions.reverse();
        last.forEach(print);
        if (!values.follow) return 0;
        let position = (db.prepare("SELECT coalesce(max(rowid), 0) FROM decision_log").pluck().get() as number);
        await new Promise<void>((resolve) => {
          process.once("SIGINT", resolve);
          process.once("SIGTERM", resolve);
          const timer = setInterval(() => {
            const next = decisionsAfter(db, position, filter);
            next.decisions.forEach(print);
            position = next.position;
          }, FOLLOW_POLL_MS);
          process.once("exit", () => clearInterval(timer));
        });
        return 0;
      }
      default:
        throw new UsageError(`decisions: unknown subcommand '${sub}' (query, tail; see bulkhead decisions --help)`);
    }
  } finally {
    db.close();
  }
}

function line(d: DecisionView): string {
  return [d.at, d.decision_id, d.tenant_id, d.actor_id, d.action, `${d.resource_type}/${d.resource_id}`, d.allow ? "allow" : "deny", d.reasons.join(",")].join("  ");
}

/** A query never creates a store: a mistyped --db is an error, not an empty answer. */
function openExisting(path: string): Db {
  if (!existsSync(path)) throw new UsageError(`--db ${path}: no such file (the sidecar's BULKHEAD_DB)`);
  return openDatabase(path);
}

function count(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > QUERY_PAGE_MAX) throw new UsageError(`${flag}: '${value}' must be a whole number from 1 to ${QUERY_PAGE_MAX}`);
  return n;
}
