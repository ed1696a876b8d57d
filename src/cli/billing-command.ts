import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import { BillingProjector } from "../billing/billing-projector.js";
import { reconcileSubscriptions } from "../billing/reconcile.js";
import { stripeClient } from "../billing/stripe-webhook.js";
import { systemClock } from "../clock.js";
import { DEFAULTS, loadConfig, type Config } from "../config.js";
import { validateReason } from "../directory/admin-input.js";
import { isReplicaView } from "../replication/replica-mark.js";
import { openDatabase, type Db } from "../store/database.js";
import { RevisionWriter } from "../store/revision-writer.js";
import { createSqliteStores } from "../store/stores.js";

export const BILLING_USAGE = `bulkhead billing - the local billing mirror

Usage:
  bulkhead billing reconcile [--dry-run] [--db FILE]
      list every subscription from the Stripe API (BULKHEAD_STRIPE_API_KEY,
      BULKHEAD_STRIPE_API_URL) and repair drift in the mirror, printing a diff
  bulkhead billing replay <event-id> --reason CODE[: text] [--db FILE]
      re-apply a stored event (audited); watermarks still apply; CODE is an
      admin reason code (BULKHEAD_ADMIN_REASON_CODES), e.g. billing_correction
  bulkhead billing events --unmapped [--db FILE]
      list stored events that named no known tenant

--db defaults to BULKHEAD_DB or ${DEFAULTS.dbPath}. In replicated mode
(BULKHEAD_NATS_URL, or a file a replicated sidecar opened) replay and
reconcile without --dry-run are refused: they would write this file only.
`;

export async function billingCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { "dry-run": { type: "boolean" }, db: { type: "string" }, reason: { type: "string" }, unmapped: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  const [sub, eventId] = positionals;
  if (values.help || !sub) {
    (values.help ? process.stdout : process.stderr).write(BILLING_USAGE);
    return values.help ? 0 : 2;
  }
  const config = loadConfig(process.env, values.db ? { db: values.db } : {});
  const db = openDatabase(config.dbPath);
  try {
    const stores = createSqliteStores(db);
    const writer = new RevisionWriter(db, systemClock);
    const projector = new BillingProjector({ writer, billing: stores.billing, directory: stores.directory, entitlements: stores.entitlements });
    const actor = `cli:${userInfo().username}`;
    const refusal = replicatedModeRefusal(sub, values["dry-run"] === true, config, db);
    if (refusal) {
      process.stderr.write(`bulkhead billing ${sub}: ${refusal}\n`);
      return 1;
    }
    if (sub === "reconcile") {
      if (!config.stripeApiKey) {
        process.stderr.write("bulkhead billing reconcile: set BULKHEAD_STRIPE_API_KEY (and BULKHEAD_STRIPE_API_URL for stripe-mock)\n");
        return 2;
      }
      const stripe = stripeClient(config.stripeApiKey, config.stripeApiUrl);
      const report = await reconcileSubscriptions({ writer, billing: stores.billing, projector }, stripe, { dryRun: values["dry-run"] === true, now: Date.now(), actor });
      for (const d of report.drift) {
        const changes = Object.entries(d.changes).map(([field, [from, to]]) => `${field}: ${JSON.stringify(from)} -> ${JSON.stringify(to)}`);
        console.log(`${d.subscriptionId} (${d.tenantId}): ${changes.join(", ")}`);
      }
      for (const id of report.unmapped) console.log(`${id}: no tenant maps to this subscription's customer; skipped`);
      console.log(`${report.checked} subscriptions checked, ${report.drift.length} drifted, ${report.applied ? "repaired" : values["dry-run"] ? "dry run: nothing written" : "nothing to repair"}`);
      return 0;
    }
    if (sub === "replay") {
      if (!eventId || !values.reason) {
        process.stderr.write(`bulkhead billing replay: needs <event-id> and --reason CODE[: text] (CODE one of ${config.adminReasonCodes.join(", ")})\n`);
        return 2;
      }
      // Same rule as every admin write: the audit's reason starts with a configured code.
      let reason: string;
      try {
        reason = validateReason(values.reason, config.adminReasonCodes);
      } catch (error) {
        process.stderr.write(`bulkhead billing replay: ${(error as Error).message}\n`);
        return 2;
      }
      const result = projector.replay(eventId, actor, reason);
      console.log(`${eventId}: ${result.outcome}${result.tenantId ? ` for ${result.tenantId}` : ""} at revision ${result.revision}`);
      return 0;
    }
    if (sub === "events" && values.unmapped) {
      for (const e of stores.billing.eventsWithOutcome("unmapped")) console.log(`${e.eventId}\t${e.type}`);
      return 0;
    }
    process.stderr.write(BILLING_USAGE);
    return 2;
  } finally {
    db.close();
  }
}

/**
 * Replay and reconcile write this file directly, not through the change log.
 * On a replicated sidecar's file such a write reaches no other sidecar, and it
 * takes the revision the log gives its next entry, so the sidecar on the file
 * stops applying the log there (ADR 43). Refused, with what to do instead,
 * until they are commands; a dry run and `events` only read.
 */
function replicatedModeRefusal(sub: string, dryRun: boolean, config: Config, db: Db): string | undefined {
  if ((sub !== "replay" && sub !== "reconcile") || (sub === "reconcile" && dryRun)) return undefined;
  const why = config.replication
    ? "refused in replicated mode (BULKHEAD_NATS_URL is set)"
    : isReplicaView(db) ? `refused in replicated mode (${config.dbPath} is a replicated sidecar's view of the change log)` : undefined;
  if (!why) return undefined;
  const instead = sub === "replay"
    ? "set metadata.tenant_id on the Stripe customer instead: its customer.updated event reaches every sidecar through the log and re-applies the customer's waiting events in order"
    : "run it with --dry-run to see the drift (it writes nothing), and repair in Stripe: the subscription's next event (any update to it) reaches every sidecar through the log";
  return `${why}: it would write this file only, which no other sidecar sees and which stops this sidecar applying the log. ${sub} is not replicated yet; ${instead}`;
}
