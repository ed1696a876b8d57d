import { XMLParser } from "fast-xml-parser";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICY_DIR, PACKAGE_ROOT } from "../../src/paths.js";
import { diffPolicies } from "../../src/xtest/policy-diff.js";
import { junitXml, summaryText } from "../../src/xtest/report.js";
import { suiteSeeds, loadSuite } from "../../src/xtest/suite.js";
import { runXtest, type XtestRun } from "../../src/xtest/xtest.js";
import { buildVariantBundle, editFile } from "../support/policy-builds.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";

const DEMO_SUITE = join(PACKAGE_ROOT, "test", "xtest", "demo.yaml");
let inProcess: XtestRun;

beforeAll(async () => {
  inProcess = await runXtest({ suitePath: DEMO_SUITE, bundleDir: DEFAULT_POLICY_DIR });
});

describe("the demo suite", () => {
  it("passes against the shipped policy with no leak", () => {
    expect(inProcess.report.leaks).toEqual([]);
    expect(inProcess.report.failures).toEqual([]);
  });

  it("covers every attack class the demo state allows", () => {
    const classes = Object.keys(inProcess.report.byClass).sort();
    expect(classes).toEqual(
      ["api_key_other_tenant", "api_key_scope", "billing_state", "caller_fields", "cross_tenant", "cross_tenant_by_slug", "expected_allow", "job_wrong_tenant", "non_member",
        "plan_entitlement", "unknown_tenant", "vertical_role"].sort(),
    );
    // Every member x every other tenant's resource x every action.
    expect(inProcess.report.byClass["cross_tenant"]!.total).toBe(5 * 4 * 7);
  });

  it("attacks with real, valid API keys, so the tenant and scope checks are what deny", () => {
    const reasonsOf = (attackClass: string) =>
      new Set(inProcess.report.results.filter((r) => r.case.attack === attackClass).flatMap((r) => ("reasons" in r.outcome ? r.outcome.reasons : [])));
    expect(reasonsOf("api_key_other_tenant")).toEqual(new Set(["wrong_tenant"]));
    expect(reasonsOf("api_key_scope")).toContain("api_key_scope");
    expect(reasonsOf("api_key_scope")).not.toContain("api_key_invalid");
  });

  it("writes JUnit XML that parses, one testsuite per attack class", () => {
    const parsed = new XMLParser({ ignoreAttributes: false }).parse(junitXml(inProcess.suite.name, inProcess.report));
    const suites = [parsed.testsuites.testsuite].flat();
    expect(parsed.testsuites["@_tests"]).toBe(String(inProcess.cases.length));
    expect(suites.map((s: Record<string, string>) => s["@_name"]).sort()).toEqual(Object.keys(inProcess.report.byClass).sort());
  });
});

describe("negative control", () => {
  it("reports named leaks when the policy loses its tenant comparison", async () => {
    const leaky = buildVariantBundle((src) => {
      editFile(join(src, "bulkhead", "checks.rego"), /resource_tenant\n\tnot same_tenant/, "resource_tenant\n\tfalse");
      editFile(join(src, "bulkhead", "decision.rego"), "\tchecks.same_tenant\n", "");
    });
    const run = await runXtest({ suitePath: DEMO_SUITE, bundleDir: leaky });
    expect(run.report.leaks.length).toBeGreaterThan(0);
    expect(new Set(run.report.leaks.map((l) => l.case.attack))).toEqual(new Set(["caller_fields", "cross_tenant", "cross_tenant_by_slug", "job_wrong_tenant"]));
    expect(run.report.leaks.map((l) => l.case.id)).toContain("cross_tenant/usr_alice@ten_acme/projects.read/prj_globex_1");
  });
});

describe("caller-controlled fields (review item 10)", () => {
  it("catches a policy that skips the role check when the caller sends source: admin", async () => {
    const trusting = buildVariantBundle((src) =>
      editFile(
        join(src, "bulkhead", "checks.rego"),
        "\tnot action.permission in ctx.permissions\n}",
        '\tnot action.permission in ctx.permissions\n\tnot input.context.source == "admin"\n}',
      ),
    );
    const run = await runXtest({ suitePath: DEMO_SUITE, bundleDir: trusting });
    expect(run.report.leaks.length).toBeGreaterThan(0);
    expect(new Set(run.report.leaks.map((l) => l.case.id.split("/").slice(0, 2).join("/")))).toEqual(new Set(["caller_fields/source_admin"]));
  });
});

describe("against a live sidecar", () => {
  let sidecar: TestSidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({ demo: false });
    for (const seed of suiteSeeds(loadSuite(DEMO_SUITE))) sidecar.seed(seed);
  });
  afterAll(() => sidecar.close());

  it("gives the same outcome as in process, case for case", async () => {
    const live = await runXtest({ suitePath: DEMO_SUITE, bundleDir: DEFAULT_POLICY_DIR, target: sidecar.grpcAddress });
    expect(live.report.leaks).toEqual([]);
    expect(live.report.results.map((r) => [r.case.id, r.outcome])).toEqual(inProcess.report.results.map((r) => [r.case.id, r.outcome]));
  });
});

describe("against a live sidecar whose key secret differs from the suite's (review item 9)", () => {
  let sidecar: TestSidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({ demo: false });
    // Same key ids, other secrets: what a target seeded under another BULKHEAD_KEY_SECRET looks like to the suite.
    for (const seed of suiteSeeds(loadSuite(DEMO_SUITE))) {
      sidecar.seed({ ...seed, apiKeys: seed.apiKeys?.map((k) => ({ ...k, raw: `${k.raw.slice(0, -4)}AAAA` })) });
    }
  });
  afterAll(() => sidecar.close());

  it("fails every API-key case with a message instead of passing it on api_key_invalid", async () => {
    const live = await runXtest({ suitePath: DEMO_SUITE, bundleDir: DEFAULT_POLICY_DIR, target: sidecar.grpcAddress });
    const keyCases = live.report.results.filter((r) => r.case.attack.startsWith("api_key_"));
    expect(keyCases.length).toBeGreaterThan(0);
    expect(keyCases.every((r) => r.verdict === "wrong_reason")).toBe(true);
    expect(live.report.failures).toHaveLength(keyCases.length);
    expect(summaryText(live.suite.name, live.report)).toContain("the suite's keys do not verify on this target");
  });
});

describe("policy diff", () => {
  it("reports a deliberate change (viewers may export) and nothing else", async () => {
    const viewersExport = buildVariantBundle((src) =>
      editFile(join(src, "bulkhead", "roles", "data.json"), '"viewer": ["projects.read",', '"viewer": ["projects.read", "reports.export",'),
    );
    const diff = await diffPolicies({ fromDir: DEFAULT_POLICY_DIR, toDir: viewersExport, replay: DEMO_SUITE });
    expect(diff.replayed).toBe(inProcess.cases.length);
    const base = [
      "vertical_role/usr_bob@ten_acme/reports.export/prj_acme_1",
      "vertical_role/usr_bob@ten_acme/reports.export/rep_acme_1",
      "vertical_role/usr_carol@ten_acme/reports.export/prj_acme_1",
      "vertical_role/usr_carol@ten_acme/reports.export/rep_acme_1",
    ];
    // The same four, also as seen through the caller-field variants (another actor_type is not a member: no flip).
    const variants = ["attributes", "owner_id", "session_id", "source_admin"].flatMap((v) => base.map((id) => `caller_fields/${v}/${id}`));
    expect(diff.flips.map((f) => f.id).sort()).toEqual([...base, ...variants].sort());
    for (const flip of diff.flips) {
      expect(flip.from).toEqual({ allow: false, reasons: ["missing_permission"] });
      expect(flip.to).toEqual({ allow: true, reasons: [] });
    }
  });

  it("replays a sidecar's decision log against its own state", async () => {
    const sidecar = await startSidecar();
    try {
      await sidecar.check({ principal: { tenantId: "ten_acme", actorId: "usr_bob" }, action: "reports.export", resource: { type: "report", id: "r1", tenantId: "ten_acme" } });
      await sidecar.check({ principal: { tenantId: "ten_acme", actorId: "usr_bob" }, action: "projects.read", resource: { type: "project", id: "p1", tenantId: "ten_acme" } });
      sidecar.bulkhead.decisionLog.flush();
      const viewersExport = buildVariantBundle((src) =>
        editFile(join(src, "bulkhead", "roles", "data.json"), '"viewer": ["projects.read",', '"viewer": ["projects.read", "reports.export",'),
      );
      const diff = await diffPolicies({ fromDir: DEFAULT_POLICY_DIR, toDir: viewersExport, replay: sidecar.bulkhead.config.dbPath });
      expect(diff.replayed).toBe(2);
      expect(diff.flips.map((f) => f.id)).toEqual(["usr_bob@ten_acme/reports.export/r1"]);
    } finally {
      await sidecar.close();
    }
  });
});
