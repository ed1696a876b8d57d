// A second process that meters against the same SQLite file as the sidecar,
// through the compiled code (run `npm run build:ts` first; npm test does).
//   node consume-worker.mjs <db> <tenant> <meter> <calls> <key-prefix> <now-ms>
// <now-ms> is the test's clock: usage windows are calendar months, so a worker
// on the wall clock would meter into another window than the sidecar under
// test (test/support/test-time.ts). Prints {"allowed": n, "denied": n} when done.
import { join } from "node:path";

const [dbPath, tenantId, meter, calls, prefix, nowMs] = process.argv.slice(2);
if (!/^\d+$/.test(nowMs ?? "")) throw new Error("consume-worker: <now-ms>, the test clock's time, is required");
const dist = join(import.meta.dirname, "..", "..", "dist", "src");
const { openDatabase } = await import(join(dist, "store", "database.js"));
const { meteringFor } = await import(join(dist, "compose.js"));
const { ManualClock } = await import(join(dist, "clock.js"));

const db = openDatabase(dbPath);
const metering = meteringFor(db, new ManualClock(Number(nowMs)));
let allowed = 0;
let denied = 0;
for (let i = 0; i < Number(calls); i++) {
  const answer = await consumeRetryingWhileLocked({ tenantId, meter, amount: 1, idempotencyKey: `${prefix}-${i}` });
  if (answer.allowed) allowed++;
  else denied++;
  // Yield now and then so the two processes interleave for real.
  if (i % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
}
db.close();

/** As a host retries UNAVAILABLE: a write that found the lock held wrote nothing, and the key makes a retry safe. */
async function consumeRetryingWhileLocked(request) {
  for (let attempt = 0; ; attempt++) {
    try {
      return metering.consume(request);
    } catch (error) {
      if (!String(error?.code).startsWith("SQLITE_BUSY") || attempt > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
  }
}
process.stdout.write(JSON.stringify({ allowed, denied }));
