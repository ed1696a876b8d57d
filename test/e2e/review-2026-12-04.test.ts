import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRevision } from "../../src/store/revision-writer.js";
import { adminAuth, adminClient, type AdminCall } from "../support/admin-client.js";
import { issueStaff, signedIn } from "../support/console-client.js";
import { startStripeMock } from "../support/processes.js";
import { checkRequest, startSidecar, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliverMockSubscription, STRIPE_MOCK_CUSTOMER } from "../support/stripe-events.js";
import { DAY, testClock } from "../support/test-time.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import type { CheckRequest } from "../../src/gen/bulkhead/v1/decision.js";
import type { DeepPartialRequest } from "../support/sidecar.js";

// Adversarial review of the console surface that landed on 2026-12-04
// (issues 13, 20): billing pages, playground, approvals, rollouts, audit
// export, decisions. Real sidecar (real gRPC, opa-wasm, SQLite), real
// stripe-mock, real HTTP; staff tokens from PutStaff. A test here that fails
// is a finding; the ones that pass are attacks that held.
const clock = testClock();
const MARKUP = `<img src=x onerror=alert(1)>`;
let sidecar: TestSidecar;
let mock: { url: string; stop: () => void };
let call: AdminCall;
let close = () => {};
let staff: Record<string, string> = {};

const db = () => sidecar.bulkhead.db;
const as = (who: string, select?: string) => signedIn(sidecar.httpPort, staff[who]!, select);
const reason = { reason_code: "billing_correction", reason_text: "review" };
const BILLING = "/console/tenants/ten_drift/billing";
const billingStatus = () => db().prepare("SELECT billing_status FROM tenants WHERE id = 'ten_drift'").pluck().get();
const auditCount = (action: string) => (db().prepare("SELECT count(*) AS n FROM admin_audit WHERE action = ?").get(action) as { n: number }).n;
const planIn = (body: string) => /name="plan" value="([0-9a-f]{16})"/.exec(body)?.[1] ?? "";
const approvalIdIn = (location: string | null) => /#(apr_[A-Za-z0-9]+)$/.exec(location ?? "")?.[1] ?? "";
const flag = (key: string, risk: string, percentage: number, description = "checkout v2") => JSON.stringify({
  key, kind: "release", owner: "team-pay", risk, description, cleanupAt: new Date(clock.now() + 90 * DAY).toISOString(), rules: [{ rule: "percentage", params: { percentage } }],
});

beforeAll(async () => {
  mock = await startStripeMock();
  sidecar = await startSidecar({ runtime: { clock }, config: { console: true, stripeApiKey: "sk_test_123", stripeApiUrl: mock.url } });
  sidecar.seed({
    tenants: [{ id: "ten_drift", slug: "drift", name: "Drift", planCode: "pro" }],
    billingCustomers: [{ customerId: STRIPE_MOCK_CUSTOMER, tenantId: "ten_drift" }],
    planLookupKeys: [{ lookupKey: "price_1PgafmB7WZ01zgkW6dKueIc5", planCode: "pro" }],
  });
  const admin = adminClient(sidecar.grpcAddress);
  call = admin.call;
  close = () => admin.client.close();
  staff = await issueStaff(call, [
    ["stf_eng", "engineer"], ["stf_eng2", "engineer"], ["stf_fin", "finance"], ["stf_fin2", "finance"], ["stf_adm", "support_admin"], ["stf_agent", "support_agent"],
  ]);
  await call("putFlag", { flagJson: flag("risky_pay", "high", 10, `${MARKUP} desc`), reason: "maintenance: review" }, adminAuth(staff.stf_eng!));
  expect(await deliverMockSubscription(sidecar.httpPort, TEST_WEBHOOK_SECRET, "evt_review_past_due", "past_due", clock.now())).toBe("applied");
  await sidecar.check(checkRequest("ten_globex", "usr_carol", "projects.read"));
}, 120_000);
afterAll(async () => {
  close();
  mock?.stop();
  await sidecar?.close();
});

/** An engineer asks for the high-risk flag at 100% from the console's refusal page; answers the approval id. */
async function requestFullRollout(): Promise<string> {
  const eng = await as("stf_eng");
  const requested = await eng.post("/console/flags/risky_pay/rollout/approval", { percentage: "100", reason_code: "maintenance", reason_text: `full ${MARKUP}` });
  expect(requested.status).toBe(303);
  const id = approvalIdIn(requested.location);
  expect(id).not.toBe("");
  return id;
}

describe("review 2026-12-04: approvals and rollouts", () => {
  // FINDING: any holder of `approvals` approves any verb. Finance (no flags.write,
  // no flags.kill) and support admins can be the "second person" on a high-risk
  // flag going to every tenant; the console's own help says "a different engineer".
  it("finance and support admins, who hold no flag right, cannot approve a high-risk flag rollout", async () => {
    const id = await requestFullRollout();
    for (const who of ["stf_fin", "stf_adm"]) {
      const c = await as(who);
      const queue = await c.get("/console/approvals");
      expect(queue.status).toBe(200);
      // The write first: that the button shows is the lesser half.
      const approved = await c.post(`/console/approvals/${id}/approve`, { reason_code: "maintenance", reason_text: "not my area" });
      expect(approved.status, who).toBe(403);
      expect(queue.body, who).not.toContain(`action="/console/approvals/${id}/approve"`);
    }
    expect(db().prepare("SELECT approved_by FROM approvals WHERE id = ?").pluck().get(id)).toBeNull();
  });

  // FINDING: the kill switch is a way around the two-person rule. PutFlag keeps the
  // kill switch and asks for an approval only when the flag it stores is fully on,
  // and a killed flag never is; reviving needs no approval. So one engineer takes a
  // high-risk flag to every tenant alone: Kill, Change rollout to 100%, Revive.
  it("one engineer cannot take a high-risk flag to everyone by killing it, rolling it out, and reviving it", async () => {
    await call("putFlag", { flagJson: flag("risky_kill", "high", 10), reason: "maintenance: review" }, adminAuth(staff.stf_eng!));
    const eng = await as("stf_eng");
    const steps = [
      await eng.post("/console/flags/risky_kill/kill", { killed: "1", reason_code: "incident" }),
      await eng.post("/console/flags/risky_kill/rollout", { percentage: "100", reason_code: "maintenance" }),
      await eng.post("/console/flags/risky_kill/kill", { killed: "0", reason_code: "incident" }),
    ].map((r) => r.status);
    const row = db().prepare("SELECT killed, (SELECT params FROM flag_rules WHERE flag_key = 'risky_kill' AND rule = 'percentage') AS pct FROM flags WHERE key = 'risky_kill'").get() as { killed: number; pct: string };
    const fullyOnUnapproved = row.killed === 0 && (JSON.parse(row.pct) as { percentage: number }).percentage >= 100;
    expect({ steps, fullyOnUnapproved }).toMatchObject({ fullyOnUnapproved: false });
  });

  // FINDING: the two-person rule guards only the step to "no percentage below 100".
  // A high-risk flag fully on for one plan is widened to every plan by one engineer
  // in the rollout form, with no approval (the same holds for a deny list emptied).
  it("one engineer cannot widen a high-risk flag that is fully on for one plan to every plan without an approval", async () => {
    const eng = adminAuth(staff.stf_eng!);
    const narrow = (risk: string) => JSON.stringify({
      key: "narrow_pay", kind: "release", owner: "team-pay", risk, description: "enterprise only", cleanupAt: new Date(clock.now() + 90 * DAY).toISOString(),
      rules: [{ rule: "plans", params: { plans: ["enterprise"] } }, { rule: "percentage", params: { percentage: 100 } }],
    });
    // Fully on for enterprise as a low-risk flag, then classed high (no wider reach: no approval asked, rightly).
    await call("putFlag", { flagJson: narrow("low"), reason: "maintenance: review" }, eng);
    await call("putFlag", { flagJson: narrow("high"), reason: "maintenance: review" }, eng);
    const widened = await (await as("stf_eng")).post("/console/flags/narrow_pay/rollout", { percentage: "100", plans: "", reason_code: "maintenance" });
    expect(widened.status).toBe(412);
    expect(db().prepare("SELECT count(*) FROM flag_rules WHERE flag_key = 'narrow_pay' AND rule = 'plans'").pluck().get()).toBe(1);
  });

  // FINDING: the risk class is the guard's input, and lowering it needs no approval:
  // PutFlag risk=low, PutFlag 100%, PutFlag risk=high leaves a high-risk flag on for
  // everyone that no second person saw.
  it("one engineer cannot take a high-risk flag to everyone by lowering its risk class for the rollout", async () => {
    await call("putFlag", { flagJson: flag("risky_class", "high", 10), reason: "maintenance: review" }, adminAuth(staff.stf_eng!));
    const steps: string[] = [];
    for (const [risk, pct] of [["low", 10], ["low", 100], ["high", 100]] as const) {
      steps.push(await call("putFlag", { flagJson: flag("risky_class", risk, pct), reason: "maintenance: review" }, adminAuth(staff.stf_eng!))
        .then(() => "ok", (e: { details?: string }) => e.details ?? "refused"));
    }
    const row = db().prepare("SELECT risk, (SELECT params FROM flag_rules WHERE flag_key = 'risky_class' AND rule = 'percentage') AS pct FROM flags WHERE key = 'risky_class'").get() as { risk: string; pct: string };
    const highAndFullyOn = row.risk === "high" && (JSON.parse(row.pct) as { percentage: number }).percentage >= 100;
    expect({ steps, highAndFullyOn }).toMatchObject({ highAndFullyOn: false });
  });

  it("held: the queue escapes the requester's reason and the flag's description; the approval covers nothing else", async () => {
    await requestFullRollout();
    const page = await (await as("stf_eng2")).get("/console/approvals");
    expect(page.status).toBe(200);
    expect(page.body).not.toContain("<img");
    expect(page.body).toContain("&lt;img src=x onerror=alert(1)&gt;");
  });

  it("held: an approval requested by one engineer cannot be spent by another, even after a second approves it", async () => {
    const id = await requestFullRollout();
    expect((await (await as("stf_eng2")).post(`/console/approvals/${id}/approve`, { reason_code: "maintenance" })).status).toBe(303);
    const other = await as("stf_eng2");
    const spent = await other.post("/console/flags/risky_pay/rollout", { percentage: "100", approval_id: id, reason_code: "maintenance" });
    expect(spent.status).toBe(412);
    expect(spent.body).toContain("was requested by someone else");
    expect((db().prepare("SELECT params FROM flag_rules WHERE flag_key = 'risky_pay' AND rule = 'percentage'").pluck().get() as string)).toContain('"percentage":10');
  });
});

describe("review 2026-12-04: billing pages", () => {
  it("held: an apply carrying another session's dry-run plan is refused and writes nothing", async () => {
    const fin = await as("stf_fin", "ten_drift");
    await fin.post(`${BILLING}/reconcile/dry-run`, reason);
    const plan = planIn((await fin.get(BILLING)).body);
    expect(plan).not.toBe("");
    const other = await as("stf_fin2", "ten_drift");
    const before = { revision: readRevision(db()), status: billingStatus(), audit: auditCount("billing.reconcile") };
    const blind = await other.post(`${BILLING}/reconcile/apply`, { plan, ...reason });
    expect(blind.status).toBe(412);
    expect({ revision: readRevision(db()), status: billingStatus(), audit: auditCount("billing.reconcile") }).toEqual(before);
  });

  it("held: after selecting another tenant, the first tenant's dry run cannot be applied from its page", async () => {
    const fin = await as("stf_fin", "ten_drift");
    await fin.post(`${BILLING}/reconcile/dry-run`, reason);
    const plan = planIn((await fin.get(BILLING)).body);
    await fin.post("/console/tenants/ten_acme/select", { reason_code: "customer_request" });
    const refused = await fin.post(`${BILLING}/reconcile/apply`, { plan, ...reason });
    expect(refused.status).toBe(403);
    // The other tenant's page has no dry run of its own: the plan is not carried over.
    expect((await fin.post("/console/tenants/ten_acme/billing/reconcile/apply", { plan, ...reason })).status).toBe(412);
    expect(billingStatus()).toBe("past_due");
  });

  it("held: a reason code that is not configured, or only free text, is refused before anything runs", async () => {
    const fin = await as("stf_fin", "ten_drift");
    for (const fields of [{ reason_code: "because" } as Record<string, string>, { reason_code: "", reason_text: "billing_correction" }, { reason_code: "billing_correction_x" }, { reason_code: "billing correction" }]) {
      const refused = await fin.post(`${BILLING}/recalculate`, fields);
      expect(refused.status, JSON.stringify(fields)).toBe(400);
    }
  });
});

describe("review 2026-12-04: decisions, playground and audit export", () => {
  it("held: another tenant's decision id is not found from the selected tenant, and the playground is refused to a support agent", async () => {
    sidecar.bulkhead.decisionLog.flush();
    const foreign = db().prepare("SELECT decision_id FROM decision_log WHERE tenant_id = 'ten_globex' ORDER BY rowid DESC LIMIT 1").pluck().get() as string;
    expect(foreign).toBeTruthy();
    const eng = await as("stf_eng", "ten_acme");
    const page = await eng.get(`/console/decisions/${foreign}`);
    expect(page.status).toBe(404);
    expect(page.body).not.toContain("usr_carol");
    const agent = await as("stf_agent", "ten_acme");
    expect((await agent.get("/console/playground")).status).toBe(403);
    expect((await agent.post("/console/playground", { actor_id: "usr_alice", action: "projects.read", resource_type: "projects" })).status).toBe(403);
  });

  it("held: the playground ignores consume and api_key posted by hand and charges nothing", async () => {
    const eng = await as("stf_eng", "ten_acme");
    const usage = () => JSON.stringify(db().prepare("SELECT * FROM usage_counters ORDER BY 1, 2").all());
    const before = usage();
    const posted = await eng.post("/console/playground", {
      actor_id: "usr_alice", action: "projects.create", resource_type: "projects", resource_id: "prj_9", consume: "5", idempotency_key: "k1", api_key: "bk_x",
    });
    expect(posted.status).toBe(303);
    expect((await eng.get("/console/playground")).body).toContain('<td id="result">allow</td>');
    expect(usage()).toBe(before);
  });

  it("held: finance and support agents get no export, by GET or POST; a GET of the export form writes nothing", async () => {
    for (const who of ["stf_fin", "stf_agent"]) {
      const c = await as(who, "ten_acme");
      expect((await c.get("/console/audit/export")).status, who).toBe(403);
      const posted = await c.post("/console/audit/export", { reason_code: "customer_request" });
      expect(posted.status, who).toBe(403);
      expect(posted.headers.get("content-disposition")).toBeNull();
    }
    const before = auditCount("audit.export");
    const adm = await as("stf_adm", "ten_acme");
    expect((await adm.get("/console/audit/export")).status).toBe(200);
    expect(auditCount("audit.export")).toBe(before);
    const noCsrf = await adm.post("/console/audit/export", { reason_code: "customer_request" }, { csrf: false });
    expect(noCsrf.status).toBe(403);
    expect(auditCount("audit.export")).toBe(before);
  });
});

describe("review 2026-12-04: a consuming BatchCheck in replicated mode (two sidecars, three NATS nodes)", () => {
  let rs: TestSidecar[] = [];
  let closeAll = async () => {};
  const meter = "exports.csv.monthly";
  const usedOn = async (s: TestSidecar, tenantId: string, minRevision: number) =>
    (await s.entitlements.get({ tenantId, minRevision })).limits.find((l) => l.meter === meter)?.used;
  const exportItem = (tenantId: string, actorId: string, resourceId: string, key: string, consume: number): DeepPartialRequest<CheckRequest> => ({
    principal: { tenantId, actorId, requestId: `${tenantId}-${resourceId}-${consume}` },
    action: "reports.export", resource: { type: "reports", id: resourceId, tenantId }, consume, idempotencyKey: key,
  });
  let head = 0;

  beforeAll(async () => {
    let admins;
    ({ sidecars: rs, admins, close: closeAll } = await startReplicatedSidecars({ clock, stream: "BULKHEAD_REVIEW", count: 2 }));
    // Globex to pro, so its exports meter can be charged too.
    const t = await admins[0]!<Record<string, unknown>>("getTenant", { tenantId: "ten_globex" });
    head = (await admins[0]!<{ storeRevision: number }>("putTenant", {
      tenantId: "ten_globex", slug: t.slug, name: t.name, planCode: "pro", status: t.status, billingStatus: t.billingStatus, region: t.region,
      isolationTier: t.isolationTier, tags: t.tags, reason: "customer_request: review",
    })).storeRevision;
  }, 120_000);
  afterAll(() => closeAll());

  it("held: one idempotency key in two tenants' items charges each tenant; the same item twice in one batch charges once; a retry elsewhere replays", async () => {
    const acme0 = await usedOn(rs[1]!, "ten_acme", head);
    const globex0 = await usedOn(rs[1]!, "ten_globex", head);
    const checks = [
      { ...exportItem("ten_acme", "usr_alice", "rep_1", "rv-key", 1), minRevision: head },
      exportItem("ten_globex", "usr_carol", "rep_1", "rv-key", 10),
      exportItem("ten_acme", "usr_alice", "rep_1", "rv-key", 1),
    ];
    const { results } = await rs[0]!.batchCheck({ checks });
    expect(results.map((r) => r.allow)).toEqual([true, true, true]);
    const last = Math.max(...results.map((r) => r.storeRevision));
    for (const s of rs) {
      expect(await usedOn(s, "ten_acme", last)).toBe(acme0! + 1);
      expect(await usedOn(s, "ten_globex", last)).toBe(globex0! + 10);
    }
    // The other sidecar: the same key and request in acme replays; in globex another request under it is refused.
    const again = await rs[1]!.check({ ...exportItem("ten_acme", "usr_alice", "rep_1", "rv-key", 1), minRevision: last });
    expect(again.allow).toBe(true);
    expect(again.decisionId).toBe(results[0]!.decisionId);
    const reused = await rs[1]!.check({ ...exportItem("ten_globex", "usr_carol", "rep_2", "rv-key", 5), minRevision: last }).catch((e: { code: number }) => e);
    expect((reused as { code?: number }).code).toBe(6);
    for (const s of rs) {
      expect(await usedOn(s, "ten_acme", last)).toBe(acme0! + 1);
      expect(await usedOn(s, "ten_globex", last)).toBe(globex0! + 10);
    }
  }, 60_000);

  it("held: a batch asking more than what is left charges nothing past the limit, and a denied item charges nothing", async () => {
    const before = await usedOn(rs[0]!, "ten_globex", head);
    const left = 100 - before!;
    const { results } = await rs[1]!.batchCheck({ checks: [
      { ...exportItem("ten_globex", "usr_carol", "rep_big", "rv-big", left + 1), minRevision: head },
      // Alice is no member of globex: denied, nothing charged, no key stored.
      exportItem("ten_globex", "usr_alice", "rep_x", "rv-denied", 1),
      exportItem("ten_globex", "usr_carol", "rep_fit", "rv-fit", left),
      exportItem("ten_globex", "usr_carol", "rep_more", "rv-more", 1),
    ] });
    expect(results.map((r) => r.allow)).toEqual([false, false, true, false]);
    const last = Math.max(...results.map((r) => r.storeRevision));
    for (const s of rs) {
      expect(await usedOn(s, "ten_globex", last)).toBe(100);
      expect(s.bulkhead.stores.usage.idempotent("ten_globex", "rv-denied", clock.now())).toBeFalsy();
    }
  }, 60_000);
});
