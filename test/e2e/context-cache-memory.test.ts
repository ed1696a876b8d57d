import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createDecisionCore } from "../../src/compose.js";
import { validateCheck } from "../../src/decision/check-input.js";
import { DEMO_DATASET } from "../../src/demo/demo-dataset.js";
import { applySeed } from "../../src/demo/store-seed.js";
import { readPolicyBundle } from "../../src/engine/policy-bundle.js";
import { fixedPolicy } from "../../src/engine/policy-source.js";
import { PolicySet } from "../../src/engine/policy-set.js";
import { ulidGenerator } from "../../src/ids.js";
import { DEFAULT_POLICY_DIR } from "../../src/paths.js";
import { openDatabase } from "../../src/store/database.js";
import { checkRequest } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// 200,000 distinct members pushed a sidecar past 500 MiB: the context cache
// was bounded by entries only (issue 15, item 11). It is bounded by bytes now.
describe("context cache", () => {
  it("stays within its byte budget however many distinct members it sees, and still answers correctly", async () => {
    const db = openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-cache-")), "c.db"));
    const clock = testClock();
    const policy = await PolicySet.load(await readPolicyBundle(DEFAULT_POLICY_DIR));
    const budget = 256 * 1024;
    const core = createDecisionCore(db, fixedPolicy(policy), { clock, ids: ulidGenerator(clock), log: () => {} }, { contextCacheBytes: budget });
    applySeed(core.writer, core.stores, DEMO_DATASET);
    const members = 3_000;
    const insert = db.prepare("INSERT INTO memberships (tenant_id, actor_id, actor_type, role, status, created_at, updated_at) VALUES ('ten_acme', ?, 'user', 'member', 'active', 0, 0)");
    db.transaction(() => {
      for (let i = 0; i < members; i++) insert.run(`usr_m${i}`);
    })();
    let peak = 0;
    for (let i = 0; i < members; i++) {
      const decision = await core.decider.check(validateCheck(checkRequest("ten_acme", `usr_m${i}`, "projects.read") as never));
      expect(decision.allow).toBe(true);
      peak = Math.max(peak, core.resolver.cacheUsage.bytes);
    }
    expect(peak).toBeLessThanOrEqual(budget);
    // It did evict, rather than hold every member.
    expect(core.resolver.cacheUsage.entries).toBeLessThan(members);
    expect(core.resolver.cacheUsage.entries).toBeGreaterThan(10);
  });
});
