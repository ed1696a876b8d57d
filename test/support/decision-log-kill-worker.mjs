// A process that records decisions as fast as it can through a DecisionLog,
// through the compiled code (run `npm run build:ts` first; npm test does),
// until it is killed; its 10 ms flush timer writes the table meanwhile.
//   node decision-log-kill-worker.mjs <db> <first-id>
// Records dec_<first-id>, dec_<first-id + 1>, ... in batches of 50 (one
// append each, as a BatchCheck), and after each batch prints
// "<next id> <records in the table>": every id below <next id> is
// in the journal (stdout to a pipe is synchronous on Linux, so the line
// leaves after the append). Starting, it imports the journal of the killed
// process before it, as `serve` does.
import { join } from "node:path";

const [dbPath, first] = process.argv.slice(2);
const dist = join(import.meta.dirname, "..", "..", "dist", "src");
const { openDatabase } = await import(join(dist, "store", "database.js"));
const { DecisionLog, journalPathFor } = await import(join(dist, "audit", "decision-log.js"));

const db = openDatabase(dbPath);
const journal = journalPathFor(db.name);
const log = new DecisionLog(db, { journal, flushIntervalMs: 10 });
const record = (i) => ({
  decisionId: `dec_${i}`, at: 1, tenantId: "ten_a", actorId: "usr_a", actorType: "user", action: "projects.read",
  resourceType: "project", resourceId: "p", resourceTenantId: "ten_a", allow: true, reasons: [],
  policyRevision: "r", storeRevision: 1, requestId: "", source: "workspace_route", impersonation: null,
});
let next = Number(first);
for (;;) {
  log.together(() => {
    for (let k = 0; k < 50; k++) log.record(record(next++));
  });
  process.stdout.write(`${next} ${log.stats.written}\n`);
  await new Promise((resolve) => setImmediate(resolve)); // the flush timer runs between batches
}
