import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../../src/store/database.js";
import { createSqliteStores } from "../../src/store/stores.js";

// The seat count is a counter kept by triggers (migration 7), so a cold
// Check does not count a 200,000-member tenant's rows. It must equal the
// count it replaces after any sequence of membership writes.
const STATUSES = ["active", "suspended", "invited"] as const;
const op = fc.oneof(
  fc.record({ kind: fc.constant("put" as const), tenant: fc.integer({ min: 0, max: 2 }), actor: fc.integer({ min: 0, max: 5 }), status: fc.constantFrom(...STATUSES) }),
  fc.record({ kind: fc.constant("delete" as const), tenant: fc.integer({ min: 0, max: 2 }), actor: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ kind: fc.constant("move" as const), tenant: fc.integer({ min: 0, max: 2 }), actor: fc.integer({ min: 0, max: 5 }), to: fc.integer({ min: 0, max: 2 }) }),
);

describe("seat counter", () => {
  it("equals the rows it replaces after any sequence of inserts, status changes, moves and deletes", () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-seats-")), "s.db"));
    const directory = createSqliteStores(db).directory;
    db.exec("INSERT INTO plans (code, name, created_at) VALUES ('free', 'Free', 0)");
    db.exec("INSERT INTO tenants (id, slug, name, status, plan_code, billing_status, region, isolation_tier, tags, created_at, updated_at) VALUES " +
      [0, 1, 2].map((t) => `('t${t}', 's${t}', 'T', 'active', 'free', 'active', 'eu', 'shared', '[]', 0, 0)`).join(", "));
    const put = db.prepare(`INSERT INTO memberships (tenant_id, actor_id, actor_type, role, status, created_at, updated_at) VALUES (?, ?, 'user', 'member', ?, 0, 0)
      ON CONFLICT (tenant_id, actor_id) DO UPDATE SET status = excluded.status`);
    const del = db.prepare("DELETE FROM memberships WHERE tenant_id = ? AND actor_id = ?");
    const move = db.prepare("UPDATE OR IGNORE memberships SET tenant_id = ? WHERE tenant_id = ? AND actor_id = ?");
    const counted = db.prepare<[string], number>("SELECT count(*) FROM memberships WHERE tenant_id = ? AND status IN ('active', 'invited')").pluck();
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        db.exec("DELETE FROM memberships");
        for (const o of ops) {
          if (o.kind === "put") put.run(`t${o.tenant}`, `a${o.actor}`, o.status);
          else if (o.kind === "delete") del.run(`t${o.tenant}`, `a${o.actor}`);
          else move.run(`t${o.to}`, `t${o.tenant}`, `a${o.actor}`);
        }
        for (const t of ["t0", "t1", "t2"]) expect(directory.countSeats(t)).toBe(counted.get(t));
      }),
      { numRuns: 200 },
    );
  });
});
