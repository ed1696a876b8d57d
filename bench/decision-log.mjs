// What the decision journal (ADR 29) costs per answered decision, beside the
// in-memory buffer it replaced, interleaved round by round on one machine:
// record() is on the answer path, so its CPU time per record is the figure.
// The flush (moving a round's records into the table in one transaction) is
// timed too, per record: from the in-memory tail (ADR 80), and reading the
// journal back and parsing it (maxTail 0, how every flush worked before).
// Also times `PRAGMA quick_check` (ADR 31) on stores of growing size.
//
//   npm run build && node bench/decision-log.mjs [--rounds 5] [--per-round 20000] [--members 0,100000,1000000]
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machineDetails, percentile, table } from "./machine.mjs";

const dist = join(import.meta.dirname, "..", "dist", "src");
const { values } = parseArgs({
  options: { rounds: { type: "string", default: "5" }, "per-round": { type: "string", default: "20000" }, members: { type: "string", default: "0,100000,1000000" } },
});
const rounds = Number(values.rounds);
const perRound = Number(values["per-round"]);
const { openDatabase, requireIntact } = await import(join(dist, "store", "database.js"));
const { DecisionLog, journalPathFor } = await import(join(dist, "audit", "decision-log.js"));

const record = (i) => ({
  decisionId: `dec_${i}`, at: 1_700_000_000_000, tenantId: "ten_acme", actorId: "usr_alice", actorType: "user", action: "projects.read",
  resourceType: "project", resourceId: `prj_${i}`, resourceTenantId: "ten_acme", allow: true, reasons: [],
  policyRevision: "233b61457337a946", storeRevision: 12, requestId: `req_${i}`, source: "workspace_route", impersonation: null,
});
const freshDb = () => openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-bench-log-")), "b.db"));
const systems = [
  { name: "journal (record before answer)", journal: true, samples: [], cpu: 0, count: 0, flushCpu: 0, flushWall: 0 },
  { name: "journal, flush reads it back", journal: true, maxTail: 0, samples: [], cpu: 0, count: 0, flushCpu: 0, flushWall: 0 },
  { name: "memory buffer (before ADR 29)", journal: false, samples: [], cpu: 0, count: 0, flushCpu: 0, flushWall: 0 },
];
let next = 0;
for (let round = 0; round < rounds; round++) {
  for (const s of round % 2 === 0 ? systems : [...systems].reverse()) {
    const db = freshDb();
    const log = new DecisionLog(db, { journal: s.journal ? journalPathFor(db.name) : null, maxBuffered: perRound + 1, maxTail: s.maxTail ?? perRound + 1, flushIntervalMs: 3_600_000 });
    const cpu = process.cpuUsage();
    for (let i = 0; i < perRound; i++) {
      const t = performance.now();
      log.record(record(next++));
      s.samples.push((performance.now() - t) * 1000);
    }
    const used = process.cpuUsage(cpu);
    s.cpu += used.user + used.system;
    s.count += perRound;
    const flushCpu = process.cpuUsage();
    const flushStart = performance.now();
    log.flush();
    s.flushWall += (performance.now() - flushStart) * 1000;
    const flushUsed = process.cpuUsage(flushCpu);
    s.flushCpu += flushUsed.user + flushUsed.system;
    log.close();
    db.close();
  }
  process.stderr.write(`decision-log: round ${round + 1}/${rounds}\n`);
}
console.log(JSON.stringify(machineDetails({ rounds, per_round: perRound }), null, 2));
const rows = systems.map((s) => {
  const sorted = [...s.samples].sort((a, b) => a - b);
  return { "record()": s.name, records: s.count, "p50 µs": percentile(sorted, 50).toFixed(2), "p99 µs": percentile(sorted, 99).toFixed(2), "CPU µs / record": (s.cpu / s.count).toFixed(2),
    "flush CPU µs / record": (s.flushCpu / s.count).toFixed(2), "flush wall µs / record": (s.flushWall / s.count).toFixed(2) };
});
console.log(table(rows, Object.keys(rows[0])));

const integrity = values.members.split(",").map(Number).map((members) => {
  const db = freshDb();
  db.pragma("foreign_keys = OFF");
  db.exec("INSERT INTO tenants (id, slug, name, status, plan_code, billing_status, region, created_at, updated_at) VALUES ('ten_big', 'big', 'Big', 'active', 'free', 'active', 'eu', 0, 0)");
  const insert = db.prepare("INSERT INTO memberships (tenant_id, actor_id, actor_type, role, status, created_at, updated_at) VALUES ('ten_big', ?, 'user', 'member', 'active', 0, 0)");
  db.transaction(() => { for (let i = 0; i < members; i++) insert.run(`usr_${i}`); })();
  db.pragma("wal_checkpoint(TRUNCATE)");
  const times = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    requireIntact(db);
    times.push(performance.now() - t);
  }
  const row = { memberships: members, "file MB": (statSync(db.name).size / 1e6).toFixed(1), "quick_check ms (best of 3)": Math.min(...times).toFixed(1) };
  db.close();
  return row;
});
console.log(table(integrity, Object.keys(integrity[0])));
