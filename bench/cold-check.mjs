// A cold Check (context cache empty) in a small tenant and in a 200,000-member
// tenant, in process, interleaved round by round so a busy neighbour slows both
// alike. Before migration 7 the seat count scanned the tenant's memberships, so
// the big tenant's cold Check grew with its size (25 ms at 200,000).
//
//   npm run build && node bench/cold-check.mjs [--members 20,200000] [--rounds 5] [--per-round 200]
//
// Prints a table with the machine's details: wall and CPU time per cold Check.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { machineDetails, percentile, table } from "./machine.mjs";

const root = join(import.meta.dirname, "..");
const dist = join(root, "dist", "src");
const { values } = parseArgs({
  options: { members: { type: "string", default: "20,200000" }, rounds: { type: "string", default: "5" }, "per-round": { type: "string", default: "200" } },
});
const sizes = values.members.split(",").map(Number);
const rounds = Number(values.rounds);
const perRound = Number(values["per-round"]);

const { openDatabase } = await import(join(dist, "store", "database.js"));
const { PolicyManager } = await import(join(dist, "engine", "policy-manager.js"));
const { createDecisionCore } = await import(join(dist, "compose.js"));
const { systemClock } = await import(join(dist, "clock.js"));
const { ulidGenerator } = await import(join(dist, "ids.js"));
const { applySeed } = await import(join(dist, "demo", "store-seed.js"));
const { DEMO_DATASET } = await import(join(dist, "demo", "demo-dataset.js"));
const { validateCheck } = await import(join(dist, "decision", "check-input.js"));

const policies = new PolicyManager({ dir: join(root, "dist", "policies"), watch: false });
await policies.start();

/** The demo data plus `members` extra active members in ten_acme, written in one transaction. */
function prepare(members) {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-cold-")), "cold.db"));
  const core = createDecisionCore(db, policies, { clock: systemClock, ids: ulidGenerator(systemClock), log: () => {} });
  applySeed(core.writer, core.stores, DEMO_DATASET);
  const insert = db.prepare(
    "INSERT INTO memberships (tenant_id, actor_id, actor_type, role, status, created_at, updated_at) VALUES ('ten_acme', ?, 'user', 'member', 'active', 0, 0)",
  );
  db.transaction(() => {
    for (let i = 0; i < members; i++) insert.run(`usr_bulk_${i}`);
  })();
  const total = db.prepare("SELECT count(*) FROM memberships WHERE tenant_id = 'ten_acme'").pluck().get();
  process.stderr.write(`cold-check: tenant with ${total} members ready\n`);
  return { db, core, total, samples: [], cpu: 0 };
}

const systems = sizes.map((members) => ({ members, ...prepare(members) }));
const input = validateCheck({
  principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId: "req_cold" },
  action: "projects.read",
  resource: { type: "project", id: "prj_1", tenantId: "ten_acme" },
});
for (let round = 0; round < rounds; round++) {
  for (const system of systems) {
    const cpuStart = process.cpuUsage();
    for (let i = 0; i < perRound; i++) {
      system.core.resolver.forgetAll();
      const start = performance.now();
      const decision = await system.core.decider.check(input);
      system.samples.push(performance.now() - start);
      if (!decision.allow) throw new Error(`cold-check: expected allow, got ${decision.reasons.map((r) => r.code)}`);
    }
    const cpu = process.cpuUsage(cpuStart);
    system.cpu += (cpu.user + cpu.system) / 1000;
  }
  process.stderr.write(`cold-check: round ${round + 1}/${rounds}\n`);
}

const rows = systems.map((s) => {
  const sorted = [...s.samples].sort((a, b) => a - b);
  return {
    "members in tenant": s.total,
    "cold Checks": sorted.length,
    "p50 ms": percentile(sorted, 50).toFixed(3),
    "p99 ms": percentile(sorted, 99).toFixed(3),
    "CPU ms / Check": (s.cpu / sorted.length).toFixed(3),
  };
});
console.log(JSON.stringify(machineDetails({ rounds, per_round: perRound }), null, 2));
console.log(table(rows, Object.keys(rows[0])));
for (const s of systems) {
  s.core.decisionLog.flush?.();
  s.db.close();
}
await policies.close?.();
