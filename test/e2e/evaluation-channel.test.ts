import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EvaluationPool } from "../../src/engine/evaluation-pool.js";
import { readPolicyBundle, type PolicyBundle } from "../../src/engine/policy-bundle.js";
import type { PolicyInput } from "../../src/engine/policy-input.js";
import { ENTRYPOINT, PolicySet } from "../../src/engine/policy-set.js";
import { compileWasm } from "../../src/engine/wasm-host.js";
import { DEFAULT_POLICY_DIR } from "../../src/paths.js";
import { faultyBundle } from "../support/policy-builds.js";

// Issue 19 (ADR 55): evaluation workers take their input and give their
// result through shared memory instead of postMessage. These tests hold the
// pooled answers, async and synchronous lane, to the serving thread's answer
// of the same real compiled policy, and check that what the worker is for
// (budget, trap, exhausted heap, close) still fails closed.

const MEMORY = { initial: 8, maximum: 1024 };

/** An owner of `tenant` asking for `action` on a resource of `resourceTenant`: allowed, or denied for a reason that depends on the input. */
function inputFor(action: string, tenant: string, resourceTenant: string, permissions: string[], resourceId = "res_1"): PolicyInput {
  return {
    action,
    resource: { type: "project", id: resourceId, tenant_id: resourceTenant, owner_id: "", attributes: {} },
    consume: 0,
    context: {
      tenant: { id: tenant, status: "active", plan_code: "enterprise", billing_status: "active", tags: [] },
      actor: { id: "usr_1", type: "user" },
      membership: { role: "owner", status: "active" },
      permissions,
      entitlements: [],
      limits: {},
      usage: {},
      features: {},
      api_key: null,
      impersonation: null,
      source: "workspace_route",
      request_id: "req_1",
      session_id: "",
    },
  };
}

async function poolFor(bundle: PolicyBundle, budgetMs: number, size = 2): Promise<EvaluationPool> {
  const module = await compileWasm(bundle.wasm);
  return EvaluationPool.start({ module, data: bundle.data, entrypoint: ENTRYPOINT, memory: MEMORY, size, budgetMs });
}

describe("evaluation through the shared-memory channel", () => {
  let direct: PolicySet;
  let pooled: PolicySet;
  let inputs: PolicyInput[];
  beforeAll(async () => {
    const bundle = await readPolicyBundle(DEFAULT_POLICY_DIR);
    direct = await PolicySet.load(bundle);
    pooled = await PolicySet.load(bundle, { evaluation: { workers: 2, budgetMs: 2_000 } });
    const data = bundle.data.bulkhead;
    const actions = Object.keys(data.actions);
    const everything = [...new Set(Object.values(data.roles).flat())];
    // Allowed, wrong tenant, unknown action, no permissions: answers differ input by input.
    inputs = actions.flatMap((action, i) => [
      inputFor(action, `ten_${i}`, `ten_${i}`, everything),
      inputFor(action, `ten_${i}`, `ten_other`, everything),
      inputFor(`${action}.unknown`, `ten_${i}`, `ten_${i}`, everything),
      inputFor(action, `ten_${i}`, `ten_${i}`, []),
    ]);
  });
  afterAll(async () => {
    await pooled?.close();
  });

  it("gives, for many concurrent inputs, each the answer the serving thread gives that input", async () => {
    const answers = await Promise.all(inputs.map((input) => pooled.evaluateBudgeted(input)));
    expect(answers).toEqual(inputs.map((input) => direct.evaluate(input)));
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBeGreaterThan(3);
  });

  it("gives the same answers on the synchronous lane", () => {
    for (const input of inputs) expect(pooled.evaluateInWrite(input)).toEqual(direct.evaluate(input));
  });

  it("carries non-ASCII text and inputs larger than the channel's first buffer, both ways", async () => {
    const unicode = inputFor(inputs[0]!.action, "ten_ü", "ten_ü", inputs[0]!.context.permissions, "résumé-😀-項目");
    const large = { ...unicode, resource: { ...unicode.resource, attributes: { blob: "ß😀".repeat(60_000) } } };
    for (const input of [unicode, large, unicode]) {
      expect(await pooled.evaluateBudgeted(input)).toEqual(direct.evaluate(input));
      expect(pooled.evaluateInWrite(input)).toEqual(direct.evaluate(input));
    }
  });

  it("fails closed, unevaluated, on an input too large for the channel", async () => {
    const pool = await poolFor(await readPolicyBundle(DEFAULT_POLICY_DIR), 2_000, 1);
    try {
      const huge = JSON.stringify({ blob: "x".repeat(65 * 1024 * 1024) });
      expect(await pool.evaluate(huge)).toMatchObject({ kind: "trap", message: expect.stringMatching(/does not fit/) });
      expect(pool.evaluateSync(huge)).toMatchObject({ kind: "trap" });
      expect((await pool.evaluate(JSON.stringify(inputs[0]))).kind).toBe("result");
    } finally {
      await pool.close();
    }
  });
});

describe("what the worker is for, through the channel", () => {
  const SLOW = 'input.action == "slow"';
  const MEMORY_HOG = 'input.action == "hog"';
  const TRAP = 'input.action == "trap"';
  let slow: PolicyBundle;
  let hog: PolicyBundle;
  let trap: PolicyBundle;
  let fine: string;
  beforeAll(async () => {
    slow = await readPolicyBundle(faultyBundle("slow", SLOW, 40_000));
    hog = await readPolicyBundle(faultyBundle("memory", MEMORY_HOG));
    trap = await readPolicyBundle(faultyBundle("trap", TRAP));
    const base = await readPolicyBundle(DEFAULT_POLICY_DIR);
    fine = JSON.stringify(inputFor(Object.keys(base.data.bulkhead.actions)[0]!, "ten_a", "ten_a", []));
  });
  const asked = (action: string) => JSON.stringify({ ...JSON.parse(fine), action });

  it("stops a runaway evaluation at the budget and answers the next ones on a fresh worker, on both lanes", async () => {
    const pool = await poolFor(slow, 200, 1);
    try {
      const [runaway, queued] = await Promise.all([pool.evaluate(asked("slow")), pool.evaluate(fine)]);
      expect(runaway.kind).toBe("budget");
      expect(queued.kind).toBe("result");
      expect(pool.evaluateSync(asked("slow")).kind).toBe("budget");
      expect(pool.evaluateSync(fine).kind).toBe("result");
      expect((await pool.evaluate(asked("slow"))).kind).toBe("budget");
      expect((await pool.evaluate(fine)).kind).toBe("result");
    } finally {
      await pool.close();
    }
  });

  it("reports a trap and an exhausted heap, and keeps answering after both", async () => {
    const trapping = await poolFor(trap, 5_000, 1);
    const hogging = await poolFor(hog, 5_000, 1);
    try {
      expect(await trapping.evaluate(asked("trap"))).toMatchObject({ kind: "trap" });
      expect(trapping.evaluateSync(asked("trap"))).toMatchObject({ kind: "trap" });
      expect((await trapping.evaluate(fine)).kind).toBe("result");
      expect(await hogging.evaluate(asked("hog"))).toMatchObject({ kind: "memory" });
      expect(hogging.evaluateSync(asked("hog"))).toMatchObject({ kind: "memory" });
      expect((await hogging.evaluate(fine)).kind).toBe("result");
      expect(hogging.evaluateSync(fine).kind).toBe("result");
    } finally {
      await Promise.all([trapping.close(), hogging.close()]);
    }
  });

  it("skips a call that ended while it was queued (CALL_EXPIRED) and answers the one behind it", async () => {
    const pool = await poolFor(slow, 300, 1);
    try {
      const running = pool.evaluate(asked("slow"));
      const caller = new AbortController();
      const expired = pool.evaluate(fine, { signal: caller.signal });
      const queued = pool.evaluate(fine);
      caller.abort();
      expect((await running).kind).toBe("budget");
      await expect(expired).rejects.toMatchObject({ code: "CALL_EXPIRED" });
      expect((await queued).kind).toBe("result");
    } finally {
      await pool.close();
    }
  });

  it("fails what is running or queued at close, and everything after", async () => {
    const pool = await poolFor(slow, 5_000, 1);
    const settled = Promise.allSettled([pool.evaluate(asked("slow")), pool.evaluate(fine)]);
    await pool.close();
    for (const outcome of await settled) expect(outcome).toMatchObject({ status: "rejected", reason: { code: "POLICY_EVALUATION_FAILED" } });
    await expect(pool.evaluate(fine)).rejects.toMatchObject({ code: "POLICY_EVALUATION_FAILED" });
    expect(() => pool.evaluateSync(fine)).toThrow(/shut down/);
  });

  it("lets what it was given finish after retire, then shuts down", async () => {
    const pool = await poolFor(slow, 300, 1);
    const given = [pool.evaluate(asked("slow")), pool.evaluate(fine)];
    pool.retire();
    expect((await Promise.all(given)).map((e) => e.kind)).toEqual(["budget", "result"]);
    await expect(pool.evaluate(fine)).rejects.toMatchObject({ code: "POLICY_EVALUATION_FAILED" });
  });
});
