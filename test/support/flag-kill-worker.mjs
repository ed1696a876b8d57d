// A second process that throws a flag's kill switch in the same SQLite file
// as the sidecar, through the compiled store code (npm run build:ts first;
// npm test does). The one write path, RevisionWriter, records the change, so
// every process that syncs before a Check sees it.
//   node flag-kill-worker.mjs <db> <flag> <on|off> <now-ms>
import { join } from "node:path";

const [dbPath, flagKey, state, nowMs] = process.argv.slice(2);
if (!["on", "off"].includes(state ?? "") || !/^\d+$/.test(nowMs ?? "")) throw new Error("flag-kill-worker: <db> <flag> <on|off> <now-ms>");
const dist = join(import.meta.dirname, "..", "..", "dist", "src");
const { openDatabase } = await import(join(dist, "store", "database.js"));
const { RevisionWriter } = await import(join(dist, "store", "revision-writer.js"));
const { SqliteFlagStore } = await import(join(dist, "flags", "sqlite-flag-store.js"));
const { ManualClock } = await import(join(dist, "clock.js"));

const db = openDatabase(dbPath);
const flags = new SqliteFlagStore(db);
const { result, revision } = new RevisionWriter(db, new ManualClock(Number(nowMs))).write((tx) => flags.setKilled(tx, flagKey, state === "on"));
db.close();
process.stdout.write(JSON.stringify({ found: result, revision }));
