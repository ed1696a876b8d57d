import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateCheck } from "../../src/decision/check-input.js";
import { buildPolicyInput, type PolicyInput } from "../../src/engine/policy-input.js";
import { fixtureFiles, loadFixtureFile } from "../../src/xtest/decision-fixtures.js";
import { opaEvalDecisions } from "../support/opa.js";
import { codes, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// Behaviour pinned by data: every case runs through (1) the compiled Wasm in
// Node, (2) `opa eval` on the Rego sources, (3) the live gRPC server. All three
// must equal the expectation, so a Wasm/evaluator divergence fails here.
// `bulkhead policy test` runs the same files (validated by the same schema)
// through the Wasm alone; test/e2e/policy-authoring.test.ts covers that command.
const files = fixtureFiles(join(import.meta.dirname, "..", "fixtures", "decisions"));

describe.each(files.map((f) => [basename(f), f] as const))("decision fixtures %s", (_name, file) => {
  const fixture = loadFixtureFile(file);
  let sidecar: TestSidecar;
  let inputs: PolicyInput[];
  let opaResults: { allow: boolean; reasons: { code: string }[] }[];

  beforeAll(async () => {
    // The test clock, not the wall clock: usage is seeded into the current
    // month's window, and a run that crosses a month end (CI's shifted-clock
    // run starts two minutes before one) would otherwise reset it mid-file.
    sidecar = await startSidecar({ demo: fixture.extends === "demo", runtime: { clock: testClock() } });
    if (fixture.seed) sidecar.seed(fixture.seed);
    inputs = fixture.cases.map((c) => {
      const check = validateCheck(c.request);
      return buildPolicyInput(check, sidecar.bulkhead.resolver.resolve(check.principal));
    });
    opaResults = opaEvalDecisions(inputs) as typeof opaResults;
  });
  afterAll(() => sidecar.close());

  it.each(fixture.cases.map((c, i) => [c.name, i] as const))("%s", async (_name, i) => {
    const fixtureCase = fixture.cases[i]!;
    const expected = { allow: fixtureCase.expect.allow, reasons: fixtureCase.expect.reasons ?? [] };

    const wasm = sidecar.bulkhead.policies.policy.evaluate(inputs[i]!);
    expect({ allow: wasm.allow, reasons: wasm.reasons.map((r) => r.code) }, "compiled Wasm").toEqual(expected);

    const opa = opaResults[i]!;
    expect({ allow: opa.allow, reasons: opa.reasons.map((r) => r.code) }, "opa eval").toEqual(expected);
    expect(opa.reasons, "opa eval and Wasm give the same messages and details").toEqual(wasm.reasons);

    const live = await sidecar.check(fixtureCase.request as Parameters<TestSidecar["check"]>[0]);
    expect({ allow: live.allow, reasons: codes(live) }, "live gRPC").toEqual(expected);
  });
});
