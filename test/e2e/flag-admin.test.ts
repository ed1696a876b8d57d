import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { DAY, testClock } from "../support/test-time.js";

// Flag writes over the real AdminService: reason codes, staff roles, audit in
// the same transaction, the kill switch for the on-call engineer alone, and
// a second approver for a high-risk flag going to 100%. Each refused write
// must leave the flags table and the audit exactly as they were.
const clock = testClock();
let sidecar: TestSidecar;
let call: AdminCall;
let close: () => void;
const staff: Record<string, string> = {};
const as = (who: string) => adminAuth(staff[who]!, "");
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e) => e);
const snapshot = () => ({
  flags: sidecar.bulkhead.db.prepare("SELECT * FROM flags ORDER BY key").all(),
  rules: sidecar.bulkhead.db.prepare("SELECT * FROM flag_rules ORDER BY flag_key, position").all(),
  audit: sidecar.bulkhead.db.prepare("SELECT count(*) FROM admin_audit").pluck().get(),
});

const beta = (over: object = {}) =>
  JSON.stringify({
    key: "beta_dashboard", kind: "release", owner: "team-dash", risk: "low", description: "new dashboard",
    cleanupAt: "2027-03-31", rules: [{ rule: "tags", params: { tags: ["beta"] } }, { rule: "percentage", params: { percentage: 10 } }], ...over,
  });

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  for (const [id, role] of [["stf_eng", "engineer"], ["stf_eng2", "engineer"], ["stf_agent", "support_agent"], ["stf_fin", "finance"]]) {
    staff[id!] = (await call<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding: new hire" })).token;
  }
});
afterAll(async () => {
  close();
  await sidecar.close();
});

describe("flag writes through AdminService", () => {
  it("puts a flag, audited with its reason, with bucketing v1 written into the rule", async () => {
    const written = await call("putFlag", { flagJson: beta(), reason: "maintenance: beta dashboard" }, as("stf_eng"));
    expect(written.changed).toBe(true);
    const { flags } = await call("listFlags", {}, as("stf_eng"));
    const stored = JSON.parse(flags.find((f: { key: string }) => f.key === "beta_dashboard").flagJson);
    expect(stored).toMatchObject({ owner: "team-dash", killed: false, createdAt: clock.now(), cleanupAt: Date.UTC(2027, 2, 31) });
    expect(stored.rules[1]).toEqual({ rule: "percentage", params: { percentage: 10, bucketing: 1, stickiness: "tenant" } });
    const audit = sidecar.bulkhead.db.prepare("SELECT actor, tenant_id, object, action, reason FROM admin_audit ORDER BY rowid DESC LIMIT 1").get();
    expect(audit).toEqual({ actor: "staff:stf_eng", tenant_id: null, object: "flag:beta_dashboard", action: "flag.put", reason: "maintenance: beta dashboard" });
  });

  it("refuses a flag write without a reason, or with one that is no reason code, and writes nothing", async () => {
    const before = snapshot();
    for (const reason of ["", "because"]) {
      const error = await failure(call("putFlag", { flagJson: beta({ owner: "someone-else" }), reason }, as("stf_eng")));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.metadata.get("bulkhead-field")).toEqual(["reason"]);
      expect((await failure(call("setKillSwitch", { key: "new_export_pipeline", killed: true, reason }, as("stf_eng")))).code).toBe(status.INVALID_ARGUMENT);
      expect((await failure(call("deleteFlag", { key: "beta_dashboard", reason }, as("stf_eng")))).code).toBe(status.INVALID_ARGUMENT);
    }
    expect(snapshot()).toEqual(before);
  });

  it("refuses flag writes by a role without the right, and writes nothing", async () => {
    const before = snapshot();
    for (const who of ["stf_agent", "stf_fin"]) {
      for (const [method, request] of [
        ["putFlag", { flagJson: beta({ owner: "intruder" }), reason: "maintenance" }],
        ["setKillSwitch", { key: "new_export_pipeline", killed: true, reason: "incident" }],
        ["deleteFlag", { key: "beta_dashboard", reason: "maintenance" }],
      ] as const) {
        const error = await failure(call(method, request, as(who)));
        expect(error.code).toBe(status.PERMISSION_DENIED);
      }
    }
    expect(snapshot()).toEqual(before);
  });

  it("names the bad field of a malformed flag", async () => {
    const cases: [object, string][] = [
      [{ kind: "forever" }, "flag.kind"],
      [{ cleanupAt: undefined }, "flag.cleanupAt"],
      [{ rules: [{ rule: "percentage", params: { percentage: 101 } }] }, "flag.rules[0].params.percentage"],
      [{ rules: [{ rule: "percentage", params: { percentage: 5, bucketing: 2 } }] }, "flag.rules[0].params.bucketing"],
      [{ rules: [{ rule: "everyone" }] }, "flag.rules[0].rule"],
    ];
    for (const [over, field] of cases) {
      const error = await failure(call("putFlag", { flagJson: beta(over), reason: "maintenance" }, as("stf_eng")));
      expect(error.metadata.get("bulkhead-field")).toEqual([field]);
    }
  });

  it("lets the on-call engineer throw a kill switch alone; the next Check is denied, and lifting it restores the rules", async () => {
    const exportCheck = () => sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"));
    expect((await exportCheck()).allow).toBe(true);
    const killed = await call("setKillSwitch", { key: "new_export_pipeline", killed: true, reason: "incident: exports failing" }, as("stf_eng"));
    expect(codes(await exportCheck())).toEqual(["feature_disabled"]);
    // A PutFlag of the same flag keeps the kill switch where it is.
    const audit = sidecar.bulkhead.db.prepare("SELECT action FROM admin_audit ORDER BY rowid DESC LIMIT 1").pluck().get();
    expect(audit).toBe("flag.kill");
    expect(killed.storeRevision).toBeGreaterThan(0);
    await call("setKillSwitch", { key: "new_export_pipeline", killed: false, reason: "incident: fixed" }, as("stf_eng"));
    expect((await exportCheck()).allow).toBe(true);
  });

  it("needs a second engineer's approval to take a high-risk flag to 100%", async () => {
    const risky = (percentage: number) => beta({ key: "risky_billing", risk: "high", rules: [{ rule: "percentage", params: { percentage } }] });
    await call("putFlag", { flagJson: risky(5), reason: "maintenance" }, as("stf_eng"));
    const before = snapshot();
    const refused = await failure(call("putFlag", { flagJson: risky(100), reason: "maintenance" }, as("stf_eng")));
    expect(refused.code).toBe(status.FAILED_PRECONDITION);
    expect(refused.metadata.get("bulkhead-field")).toEqual(["approval_id"]);
    expect(snapshot()).toEqual(before);
    const approval = await call("requestApproval", { putFlag: { flagJson: risky(100) }, reason: "maintenance: full rollout" }, as("stf_eng"));
    await call("approve", { approvalId: approval.approvalId, reason: "maintenance" }, as("stf_eng2"));
    const done = await call("putFlag", { flagJson: risky(100), approvalId: approval.approvalId, reason: "maintenance" }, as("stf_eng"));
    expect(done.changed).toBe(true);
  });

  it("lists stale flags: past their cleanup date, or fully on longer than their type's lifetime", async () => {
    await call("putFlag", { flagJson: beta({ key: "old_release", cleanupAt: "2026-01-01", rules: [] }), reason: "maintenance" }, as("stf_eng"));
    await call("putFlag", { flagJson: beta({ key: "done_release", cleanupAt: "2099-01-01", rules: [] }), reason: "maintenance" }, as("stf_eng"));
    const staleNow = (await call("listFlags", { staleOnly: true }, as("stf_eng"))).flags.map((f: { key: string }) => f.key);
    expect(staleNow).toContain("old_release");
    expect(staleNow).not.toContain("done_release");
    clock.advance(31 * DAY); // a release flag is expected to be gone 30 days after reaching everyone
    const later = (await call("listFlags", { staleOnly: true, unusedDays: 365 }, as("stf_eng"))).flags;
    expect(later.find((f: { key: string }) => f.key === "done_release").staleReasons).toEqual([
      "fully on for 31 days, longer than a release flag's 30",
    ]);
  });

  it("lists a flag not evaluated for more than unused_days; one evaluated recently is not listed", async () => {
    const unused = async (days: number) =>
      (await call("listFlags", { staleOnly: true, unusedDays: days }, as("stf_eng"))).flags
        .filter((f: { staleReasons: string[] }) => f.staleReasons.some((r) => /evaluated/.test(r))).map((f: { key: string }) => f.key);
    clock.advance(10 * DAY);
    // A Check for reports.export evaluates new_export_pipeline (its catalog flag); ai_assistant stays unevaluated.
    await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export"));
    const listed = await unused(7);
    expect(listed).not.toContain("new_export_pipeline");
    expect(listed).toContain("ai_assistant");
    clock.advance(8 * DAY);
    expect(await unused(7)).toContain("new_export_pipeline");
    expect((await failure(call("listFlags", { unusedDays: 3651 }, as("stf_eng")))).code).toBe(status.INVALID_ARGUMENT);
  });

  it("deletes a flag; an unknown key is NOT_FOUND", async () => {
    await call("deleteFlag", { key: "old_release", reason: "maintenance: cleanup" }, as("stf_eng"));
    expect((await failure(call("deleteFlag", { key: "old_release", reason: "maintenance" }, as("stf_eng")))).code).toBe(status.NOT_FOUND);
  });
});
