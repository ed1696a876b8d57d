import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { MINUTE, TEST_START, testClock } from "../support/test-time.js";

// The decision-log query (issue 17): AdminService.QueryDecisions over a real
// sidecar, and `bulkhead decisions query|tail` over its store file. Two
// tenants' decisions interleave, and usr_carol is a member of both, so a
// filter by actor alone would leak: every query must stay inside its tenant.
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
const staff: Record<string, string> = {};
const as = (who: string) => adminAuth(staff[who]!, "");
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e) => e);

interface View { decisionId: string; tenantId: string; actorId: string; action: string; allow: boolean; reasons: string[]; at: string }
const query = (request: Record<string, unknown>, who = "stf_eng") => call<{ decisions: View[]; nextPageToken: string }>("queryDecisions", request, as(who));

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  for (const [id, role] of [["stf_agent", "support_agent"], ["stf_admin", "support_admin"], ["stf_fin", "finance"], ["stf_eng", "engineer"]]) {
    staff[id!] = (await call<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding: new hire" })).token;
  }
  // 12 rounds a minute apart; each round: carol in acme, carol in globex, alice on a globex project (cross-tenant), bob deleting in acme.
  for (let i = 0; i < 12; i++) {
    await sidecar.check(checkRequest("ten_acme", "usr_carol", "projects.read"));
    await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.read"));
    await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"));
    await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.delete"));
    clock.advance(MINUTE);
  }
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("AdminService.QueryDecisions", () => {
  it("answers one tenant's decisions only, newest first, even filtered by an actor of both tenants", async () => {
    const acme = await query({ tenantId: "ten_acme", pageSize: 500 });
    expect(acme.decisions).toHaveLength(36);
    expect(acme.decisions.every((d) => d.tenantId === "ten_acme")).toBe(true);
    expect([...acme.decisions].sort((a, b) => b.at.localeCompare(a.at)).map((d) => d.at)).toEqual(acme.decisions.map((d) => d.at));
    const carolInGlobex = await query({ tenantId: "ten_globex", actorId: "usr_carol", pageSize: 500 });
    expect(carolInGlobex.decisions).toHaveLength(12);
    expect(carolInGlobex.decisions.every((d) => d.tenantId === "ten_globex" && d.actorId === "usr_carol")).toBe(true);
    expect((await query({ tenantId: "ten_initech" })).decisions).toEqual([]);
  });

  it("filters by action, result, reason, decision id and time", async () => {
    const denied = await query({ tenantId: "ten_acme", result: "deny", pageSize: 500 });
    expect(denied.decisions).toHaveLength(24);
    expect(denied.decisions.every((d) => !d.allow)).toBe(true);
    const crossTenant = await query({ tenantId: "ten_acme", reason: "wrong_tenant", pageSize: 500 });
    expect(crossTenant.decisions).toHaveLength(12);
    expect(crossTenant.decisions.every((d) => d.actorId === "usr_alice" && d.reasons.includes("wrong_tenant"))).toBe(true);
    const deletes = await query({ tenantId: "ten_acme", action: "projects.delete", result: "allow" });
    expect(deletes.decisions).toEqual([]);
    const one = crossTenant.decisions[3]!;
    expect((await query({ tenantId: "ten_acme", decisionId: one.decisionId })).decisions.map((d) => d.decisionId)).toEqual([one.decisionId]);
    expect((await query({ tenantId: "ten_globex", decisionId: one.decisionId })).decisions, "another tenant's decision id").toEqual([]);
    const window = await query({ tenantId: "ten_acme", since: new Date(TEST_START + 2 * MINUTE).toISOString(), until: new Date(TEST_START + 4 * MINUTE).toISOString() });
    expect(window.decisions).toHaveLength(6);
  });

  it("pages without repeating or skipping a row while decisions are appended", async () => {
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await query({ tenantId: "ten_acme", pageSize: 7, pageToken: token });
      seen.push(...page.decisions.map((d) => d.decisionId));
      token = page.nextPageToken;
      pages++;
      if (pages === 2) await sidecar.check(checkRequest("ten_acme", "usr_carol", "projects.read")); // newer than every page: not in this walk
    } while (token);
    expect(seen).toHaveLength(36);
    expect(new Set(seen).size).toBe(36);
    expect(pages).toBe(6);
  });

  it("a page token from one tenant's query shows nothing of that tenant in another's", async () => {
    const first = await query({ tenantId: "ten_acme", pageSize: 5 });
    const replayed = await query({ tenantId: "ten_globex", pageSize: 500, pageToken: first.nextPageToken });
    expect(replayed.decisions.every((d) => d.tenantId === "ten_globex")).toBe(true);
  });

  it("is for support admins, engineers and the bootstrap credential only", async () => {
    expect((await query({ tenantId: "ten_acme" }, "stf_admin")).decisions.length).toBeGreaterThan(0);
    expect((await call("queryDecisions", { tenantId: "ten_acme" })).decisions.length).toBeGreaterThan(0);
    for (const who of ["stf_agent", "stf_fin"]) expect((await failure(query({ tenantId: "ten_acme" }, who))).code, who).toBe(status.PERMISSION_DENIED);
    expect((await failure(call("queryDecisions", { tenantId: "ten_acme" }, adminAuth("bk_staff_not-a-token", "")))).code).toBe(status.UNAUTHENTICATED);
  });

  it.each([
    [{}, "tenant_id"],
    [{ tenantId: "ten_acme", result: "maybe" }, "result"],
    [{ tenantId: "ten_acme", since: "yesterday" }, "since"],
    [{ tenantId: "ten_acme", pageSize: 501 }, "page_size"],
    [{ tenantId: "ten_acme", pageToken: "not-a-token" }, "page_token"],
    [{ tenantId: "ten_acme", actorId: "usr carol" }, "actor_id"],
  ])("refuses %j naming the field %s", async (request, field) => {
    const error = await failure(query(request));
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toContain(field);
  });
});

describe("bulkhead decisions", () => {
  const cli = (...args: string[]) => {
    sidecar.bulkhead.decisionLog.flush();
    const r = spawnSync(process.execPath, [CLI, "decisions", ...args, "--db", sidecar.bulkhead.config.dbPath], { encoding: "utf8", timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it("query prints matching decisions as lines or JSON, newest first", () => {
    const text = cli("query", "--tenant", "ten_acme", "--reason", "wrong_tenant", "--limit", "3");
    expect(text.status, text.stderr).toBe(0);
    const lines = text.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^\S+Z +dec_\S+ +ten_acme +usr_alice +projects\.read +projects\/\S+ +deny +wrong_tenant/);
    const json = cli("query", "--tenant", "ten_globex", "--json");
    const records = json.stdout.trim().split("\n").map((l) => JSON.parse(l) as { tenant_id: string });
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((r) => r.tenant_id === "ten_globex")).toBe(true);
  });

  it("tail prints the last N, oldest first", () => {
    const tail = cli("tail", "--tenant", "ten_globex", "--lines", "2", "--json");
    expect(tail.status, tail.stderr).toBe(0);
    const records = tail.stdout.trim().split("\n").map((l) => JSON.parse(l) as { at: string; tenant_id: string });
    expect(records).toHaveLength(2);
    expect(records[0]!.at <= records[1]!.at).toBe(true);
  });

  it("names a bad flag and exits 2", () => {
    const bad = cli("query", "--result", "maybe");
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--result");
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});
