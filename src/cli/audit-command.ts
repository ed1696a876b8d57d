import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { checkSignature, parseCheckpoint, takeCheckpoint, type Checkpoint } from "../audit/audit-checkpoint.js";
import { exportTenantAudit } from "../audit/audit-export.js";
import { isDirectory, latestCheckpointFile } from "../audit/auto-checkpoints.js";
import { verifyAudit } from "../audit/audit-verify.js";
import { DEFAULTS } from "../config.js";
import { UsageError } from "../errors.js";
import { openDatabase, type Db } from "../store/database.js";

export const AUDIT_USAGE = `bulkhead audit - the tamper-evident audit trail (decision log and admin audit)

Usage:
  bulkhead audit verify [--db FILE] [--checkpoint FILE|DIR [--public-key PEM]]
      recompute both hash chains; name the first changed, inserted, deleted or moved
      record. With a checkpoint (taken earlier, kept off-host), also find a truncated
      tail or a rewritten chain, and check the checkpoint's Ed25519 signature. A DIR
      (the sidecar's BULKHEAD_AUDIT_CHECKPOINT_DIR) means its newest checkpoint. A chain
      pruned by retention is checked from its anchor (the last pruned record).
  bulkhead audit checkpoint [--db FILE] [--key PEM] [--out FILE]
      print (or write) the head of each chain now, signed with an Ed25519 private key;
      ship it off-host (cron, a log shipper) so verify can use it later
  bulkhead audit export --tenant ID [--since TIME] [--until TIME] [--db FILE]
      one tenant's decisions and operator actions as JSON lines, oldest first; TIME is
      ISO 8601 (2026-11-01, 2026-11-01T12:00:00Z); --since inclusive, --until exclusive

  --db FILE   the sidecar's store (BULKHEAD_DB, default ${DEFAULTS.dbPath}); no audit row is changed
  Make a key pair: openssl genpkey -algorithm ed25519 -out audit.key &&
                   openssl pkey -in audit.key -pubout -out audit.pub

Exit codes: 0 the chains hold (verify) or done, 1 tampering found, 2 usage error.
`;

export async function auditCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === "--help" || sub === "-h" || rest.includes("--help") || rest.includes("-h")) {
    (sub ? process.stdout : process.stderr).write(AUDIT_USAGE);
    return sub ? 0 : 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      db: { type: "string" },
      checkpoint: { type: "string" },
      "public-key": { type: "string" },
      key: { type: "string" },
      out: { type: "string" },
      tenant: { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
    },
  });
  const dbPath = values.db ?? process.env.BULKHEAD_DB ?? DEFAULTS.dbPath;
  switch (sub) {
    case "verify":
      return withDb(dbPath, (db) => verify(db, values.checkpoint, values["public-key"]));
    case "checkpoint":
      return withDb(dbPath, (db) => {
        const checkpoint = takeCheckpoint(db, new Date(), values.key === undefined ? undefined : readText(values.key, "--key"));
        const text = `${JSON.stringify(checkpoint, null, 2)}\n`;
        if (values.out) writeFileSync(values.out, text);
        else process.stdout.write(text);
        return 0;
      });
    case "export": {
      if (!values.tenant) throw new UsageError("audit export: --tenant is required (one tenant per export)");
      const range = { tenantId: values.tenant, since: time(values.since, "--since"), until: time(values.until, "--until") };
      return withDb(dbPath, (db) => {
        for (const line of exportTenantAudit(db, range)) process.stdout.write(`${line}\n`);
        return 0;
      });
    }
    default:
      throw new UsageError(`audit: unknown subcommand '${sub}' (verify, checkpoint, export; see bulkhead audit --help)`);
  }
}

function verify(db: Db, checkpointPath: string | undefined, publicKeyPath: string | undefined): number {
  let checkpoint: Checkpoint | undefined;
  let failed = false;
  if (publicKeyPath && !checkpointPath) throw new UsageError("--public-key checks a checkpoint's signature: pass --checkpoint FILE too");
  if (checkpointPath && isDirectory(checkpointPath)) {
    // The sidecar's own checkpoints (BULKHEAD_AUDIT_CHECKPOINT_DIR): the newest one.
    const newest = latestCheckpointFile(checkpointPath);
    if (!newest) throw new UsageError(`--checkpoint ${checkpointPath}: a directory with no checkpoint-*.json file`);
    console.log(`note using the newest checkpoint in ${checkpointPath}: ${newest}`);
    checkpointPath = newest;
  }
  if (checkpointPath) {
    checkpoint = parseCheckpoint(readText(checkpointPath, "--checkpoint"), checkpointPath);
    if (publicKeyPath) {
      const problem = checkSignature(checkpoint, readText(publicKeyPath, "--public-key"));
      console.log(problem ? `FAIL checkpoint ${checkpointPath}: ${problem}` : `ok   checkpoint ${checkpointPath}: signature verified (key ${checkpoint.signature!.keyId})`);
      failed ||= problem !== null;
    } else if (checkpoint.signature) {
      console.log(`note checkpoint ${checkpointPath} is signed, but no --public-key was given: its signature was not checked`);
    }
  }
  for (const report of verifyAudit(db, checkpoint)) {
    const prefix =
      (report.unchained > 0 ? ` (${report.unchained} older rows written before the chain began are not covered)` : "") +
      (report.anchor ? ` (from the retention anchor at rowid ${report.anchor.rowId}: ${report.anchor.records} older records pruned)` : "");
    for (const note of report.notes) console.log(`note ${report.chain}: ${note}`);
    if (report.problem) {
      failed = true;
      console.log(`FAIL ${report.chain}: ${report.problem}; ${report.verified} records before it verified`);
    } else {
      console.log(`ok   ${report.chain}: ${report.verified} records verified${report.head ? `, head rowid ${report.head.rowId} ${report.head.hash.slice(0, 16)}` : ""}${prefix}`);
    }
  }
  return failed ? 1 : 0;
}

function withDb(path: string, work: (db: Db) => number): number {
  const db = openDatabase(path);
  try {
    return work(db);
  } finally {
    db.close();
  }
}

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`${flag} ${path}: ${(error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (error as Error).message}`);
  }
}

/** An ISO 8601 time flag (--since, --until) in ms since the epoch; shared by `decisions`. */
export function time(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`${flag}: '${value}' is not an ISO 8601 time (for example 2026-11-01 or 2026-11-01T12:00:00Z)`);
  return ms;
}
