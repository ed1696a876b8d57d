import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueStaff, signedIn } from "../support/console-client.js";
import { startReplicatedSidecars, type ReplicatedSidecars } from "../support/replicated-sidecars.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { adminAuth, adminClient } from "../support/admin-client.js";
import { SECOND, testClock } from "../support/test-time.js";
import { FLEET_STALE_MS } from "../../src/replication/fleet-status.js";

// The console's fleet page (ADR 90) on a real three-node JetStream cluster
// with three real sidecars: each publishes its status to <stream>_fleet,
// and any one of them lists all three with their revisions.
const clock = testClock();
let fleet: ReplicatedSidecars;
let staff: Record<string, string> = {};

/** The fleet table's rows: sidecar id, policy revision, applied revision, lag, state. */
function rowsOf(body: string): { id: string; policy: string; applied: number; lag: number; state: string }[] {
  const table = /<table id="fleet">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(body)![1]!;
  return [...table.matchAll(/<tr[^>]*><td>([^<]*)<\/td><td>[^<]*<\/td><td>([^<]*)<\/td><td>(\d+)<\/td><td>(\d+)<\/td>\s*<td>[^<]*<\/td><td>([a-z]+)<\/td><\/tr>/g)].map((m) => ({
    id: m[1]!, policy: m[2]!, applied: Number(m[3]), lag: Number(m[4]), state: m[5]!,
  }));
}
const lastSeqOf = (body: string) => Number(/<b id="last-seq">(\d+)<\/b>/.exec(body)![1]);
const caughtUp = () => Promise.all(fleet.sidecars.map((s) => s.bulkhead.replication!.catchUp()));
const publishAll = (sidecars: TestSidecar[] = fleet.sidecars) => Promise.all(sidecars.map((s) => s.bulkhead.publishFleetStatus()));

beforeAll(async () => {
  fleet = await startReplicatedSidecars({ clock, stream: "BULKHEAD_FLEET", config: { console: true } });
  staff = await issueStaff(fleet.admins[0]!, [["stf_eng", "engineer"], ["stf_adm", "support_admin"], ["stf_fin", "finance"], ["stf_sup", "support_agent"]]);
  await caughtUp();
}, 120_000);
afterAll(() => fleet.close());

describe("fleet page, replicated", () => {
  it("lists the three sidecars with their policy revision, applied store revision and lag, from any sidecar", async () => {
    await publishAll();
    for (const s of fleet.sidecars) {
      const page = await (await signedIn(s.httpPort, staff.stf_eng!)).get("/console/fleet");
      expect(page.status).toBe(200);
      const rows = rowsOf(page.body);
      expect(rows).toHaveLength(3);
      const last = lastSeqOf(page.body);
      expect(last).toBe(s.bulkhead.replication!.revision);
      for (const row of rows) {
        expect(row.policy).toBe(s.bulkhead.policies.policy.revision);
        expect(row.applied).toBe(last);
        expect(row.lag).toBe(0);
        expect(row.state).toBe("reporting");
      }
    }
  });

  it("shows a sidecar's lag once the stream moved past what it reported, and marks one that stopped reporting stale", async () => {
    await publishAll();
    await issueStaff(fleet.admins[1]!, [["stf_more", "engineer"]]);
    await caughtUp();
    const c = await signedIn(fleet.sidecars[2]!.httpPort, staff.stf_adm!);
    const moved = await c.get("/console/fleet");
    for (const row of rowsOf(moved.body)) expect(row.lag).toBe(lastSeqOf(moved.body) - row.applied);
    // Nobody reported since the write (unless a 5 s timer fired just then, on every sidecar at once).
    expect(rowsOf(moved.body).some((r) => r.lag >= 1)).toBe(true);
    // Past the stale bound on the shared test clock, only A and B report again.
    clock.advance(FLEET_STALE_MS + SECOND);
    await publishAll(fleet.sidecars.slice(0, 2));
    const page = await c.get("/console/fleet");
    const rows = rowsOf(page.body);
    expect(rows).toHaveLength(3);
    expect(rows.filter((r) => r.state === "stale")).toHaveLength(1);
    expect(rows.filter((r) => r.state === "reporting").every((r) => r.lag === 0)).toBe(true);
  });

  it("is for staff with changes.watch only: hidden from and refused to finance and support agents", async () => {
    for (const who of ["stf_fin", "stf_sup"]) {
      const c = await signedIn(fleet.sidecars[0]!.httpPort, staff[who]!);
      expect((await c.get("/console/tenants")).body).not.toContain('href="/console/fleet"');
      const page = await c.get("/console/fleet");
      expect(page.status).toBe(403);
      expect(page.body).not.toContain('id="fleet"');
    }
  });
});

describe("decision queries in replicated mode", () => {
  it("a query made on one sidecar is audited on every sidecar (the row is a command)", async () => {
    await fleet.admins[0]!("queryDecisions", { tenantId: "ten_globex", actorId: "usr_carol" }, adminAuth(staff.stf_eng!, ""));
    await caughtUp();
    for (const s of fleet.sidecars) {
      const row = s.bulkhead.db.prepare("SELECT actor, tenant_id AS tenantId, object, source FROM admin_audit WHERE action = 'decisions.query'").get();
      expect(row).toEqual({ actor: "staff:stf_eng", tenantId: "ten_globex", object: "decision_log?actor_id=usr_carol", source: "admin_api" });
    }
  });
});

describe("fleet page, single-node", () => {
  it("shows this sidecar only, at its store revision", async () => {
    const single = await startSidecar({ runtime: { clock }, config: { console: true } });
    const admin = adminClient(single.grpcAddress);
    try {
      const [token] = Object.values(await issueStaff(admin.call, [["stf_one", "engineer"]]));
      const page = await (await signedIn(single.httpPort, token!)).get("/console/fleet");
      expect(page.status).toBe(200);
      expect(page.body).toContain("Single-node mode");
      const rows = rowsOf(page.body);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ policy: single.bulkhead.policies.policy.revision, lag: 0, state: "reporting" });
      expect(rows[0]!.applied).toBeGreaterThan(0);
    } finally {
      admin.client.close();
      await single.close();
    }
  });
});

describe("with every NATS node stopped (last: it stops the cluster)", () => {
  it("the playground, the decision search and the fleet page fail closed: refused pages, no answer", async () => {
    const c = await signedIn(fleet.sidecars[0]!.httpPort, staff.stf_eng!, "ten_acme");
    for (let i = 0; i < 3; i++) await fleet.cluster.kill(i);
    const explained = await c.post("/console/playground", { actor_id: "usr_alice", action: "projects.read", resource_type: "projects", resource_id: "prj_1" });
    expect(explained.status).toBe(503);
    expect(explained.body).toContain("REPLICATION_UNAVAILABLE");
    expect((await c.get("/console/playground")).body).not.toContain('id="result"');
    // The query would answer from the local file, but its audit row cannot be appended: no row, no page.
    const search = await c.get("/console/decisions");
    expect(search.status).toBe(503);
    expect(search.body).not.toContain("<td>usr_");
    expect((await c.get("/console/fleet")).status).toBe(503);
  }, 60_000);
});
