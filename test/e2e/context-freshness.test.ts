import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/store/database.js";
import { RevisionWriter } from "../../src/store/revision-writer.js";
import { createSqliteStores } from "../../src/store/stores.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { MINUTE, nextMonthStart, TEST_START, testClock } from "../support/test-time.js";

// The context cache must never serve state older than an acknowledged write,
// whoever wrote it, and must notice time-based expiry without any write.
const clock = testClock();
let sidecar: TestSidecar;
beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
});
afterAll(() => sidecar.close());

describe("read-your-writes on a clock that stands still", () => {
  it("gives up on an unreachable min_revision within the wait, though the test clock never moves", async () => {
    // The wait is measured on real timers; were it measured on the injected
    // clock, this call would wait for ever.
    const ahead = sidecar.bulkhead.tracker.revision + 1000;
    const error = await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme", { minRevision: ahead })).catch((e) => e);
    expect(error.metadata.get("bulkhead-error-code")).toEqual(["STORE_REVISION_NOT_REACHED"]);
    expect(clock.now()).toBe(TEST_START);
  }, 10_000);
});

describe("context freshness", () => {
  it("sees a write made through another connection on the very next Check", async () => {
    const warm = await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.read"));
    expect(warm.allow).toBe(true); // now cached

    const other = openDatabase(sidecar.bulkhead.config.dbPath);
    const writer = new RevisionWriter(other, clock);
    const revision = writer.write((tx) => createSqliteStores(other).directory.removeMembership(tx, "ten_acme", "usr_bob")).revision;
    other.close();

    const after = await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.read"));
    expect(codes(after)).toEqual(["not_a_member"]);
    expect(after.storeRevision).toBe(revision);
  });

  it("lets a non-member in on the next Check after a membership is added", async () => {
    const before = await sidecar.check(checkRequest("ten_globex", "usr_newcomer", "projects.read"));
    expect(codes(before)).toEqual(["not_a_member"]); // cached as a non-member now
    sidecar.seed({ memberships: [{ tenantId: "ten_globex", actorId: "usr_newcomer", role: "viewer" }] });
    expect((await sidecar.check(checkRequest("ten_globex", "usr_newcomer", "projects.read"))).allow).toBe(true);
  });

  it("sees a tenant created after a request for it was denied", async () => {
    const before = await sidecar.check(checkRequest("ten_later", "usr_alice", "projects.read"));
    expect(codes(before)).toEqual(["not_a_member"]);
    sidecar.seed({
      tenants: [{ id: "ten_later", slug: "later", planCode: "pro" }],
      memberships: [{ tenantId: "ten_later", actorId: "usr_alice", role: "owner" }],
    });
    expect((await sidecar.check(checkRequest("ten_later", "usr_alice", "projects.read"))).allow).toBe(true);
  });

  it("stops applying an override at its expiry without any write", async () => {
    const expiresAt = clock.now() + 60_000;
    sidecar.seed({
      overrides: [
        { tenantId: "ten_globex", entitlement: "analytics.pro", effect: "grant", reason: "trial", author: "usr_sales", expiresAt },
      ],
    });
    expect((await sidecar.check(checkRequest("ten_globex", "usr_carol", "analytics.view"))).allow).toBe(true);
    clock.set(expiresAt - 1);
    expect((await sidecar.check(checkRequest("ten_globex", "usr_carol", "analytics.view"))).allow).toBe(true);
    clock.set(expiresAt);
    const expired = await sidecar.check(checkRequest("ten_globex", "usr_carol", "analytics.view"));
    expect(codes(expired)).toEqual(["not_in_plan"]);
  });

  it("reads usage of the new month once the window rolls over", async () => {
    clock.set(nextMonthStart(TEST_START) - MINUTE);
    sidecar.seed({ usage: [{ tenantId: "ten_acme", meter: "exports.csv.monthly", used: 100 }] });
    const full = await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"));
    expect(codes(full)).toEqual(["limit_reached"]);
    clock.set(nextMonthStart(TEST_START));
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"))).allow).toBe(true);
  });
});
