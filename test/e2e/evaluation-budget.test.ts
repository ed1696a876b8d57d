import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DRAIN_DEADLINE_MS } from "../../src/compose.js";
import { validateCheck } from "../../src/decision/check-input.js";
import { CheckRequest, DecisionServiceClient, type CheckResponse } from "../../src/gen/bulkhead/v1/decision.js";
import { readPolicyBundle } from "../../src/engine/policy-bundle.js";
import { PolicySet } from "../../src/engine/policy-set.js";
import { toRawCheck } from "../../src/server/grpc/decision-mapping.js";
import { faultyBundle } from "../support/policy-builds.js";
import { startSidecarProcess } from "../support/processes.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";

// Issue 15 item 3: a slow bundle froze the process for 4-44 s, calls whose
// deadline had passed were still evaluated and logged, and SIGTERM waited
// more than 30 s. The bundle here is real and slow only for reports.export
// (so it passes the smoke cases): 40,000 x 40,000 comparisons, about a
// minute per evaluation on this machine, far past any budget.
const slowBundle = faultyBundle("slow", 'input.action == "reports.export"', 40_000);
const slowCheck = (requestId: string) => ({ ...checkRequest("ten_acme", "usr_alice", "reports.export"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId } });
const fastCheck = (requestId: string) => ({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId } });

const loggedFor = (sidecar: TestSidecar, requestId: string) => {
  sidecar.bulkhead.decisionLog.flush();
  return sidecar.bulkhead.db.prepare("SELECT allow, reasons FROM decision_log WHERE request_id = ?").all(requestId) as { allow: number; reasons: string }[];
};

describe("the evaluation budget", () => {
  let sidecar: TestSidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({ policyDir: slowBundle, config: { policyWorkers: 2, policyBudgetMs: 250 } });
  });
  afterAll(() => sidecar.close());

  it("denies a Check past the budget with policy_timeout, while other Checks and /healthz keep being answered", async () => {
    const order: string[] = [];
    const startedAt = performance.now();
    const slow = sidecar.check(slowCheck("req_slow")).then((answer) => {
      order.push("slow");
      return { answer, ms: performance.now() - startedAt };
    });
    const fast = Array.from({ length: 10 }, (_, i) =>
      sidecar.check(fastCheck(`req_fast_${i}`)).then((answer) => {
        order.push("fast");
        return answer;
      }),
    );
    const health = fetch(`http://127.0.0.1:${sidecar.httpPort}/healthz`).then((r) => {
      order.push("health");
      return r.status;
    });
    const [{ answer, ms }, fastAnswers, healthStatus] = await Promise.all([slow, Promise.all(fast), health]);
    expect(answer.allow).toBe(false);
    expect(codes(answer)).toEqual(["policy_timeout"]);
    expect(answer.reasons[0]!.details).toEqual({ budget_ms: "250" });
    // Cut off near the budget, not after the minute the evaluation would take.
    expect(ms).toBeLessThan(10_000);
    expect(fastAnswers.every((a: CheckResponse) => a.allow)).toBe(true);
    expect(healthStatus).toBe(200);
    expect(order.at(-1)).toBe("slow");
    // A delivered deny is logged like any other.
    expect(loggedFor(sidecar, "req_slow")).toEqual([{ allow: 0, reasons: '["policy_timeout"]' }]);
  });

  it("cuts a consuming Check off at the budget too, charges nothing, and replaces the synchronous worker", async () => {
    const consuming = (action: string, requestId: string) => ({ ...checkRequest("ten_acme", "usr_alice", action), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId }, consume: 1, idempotencyKey: `idem_${requestId}` });
    const usage = (meter: string) =>
      (sidecar.bulkhead.db.prepare("SELECT COALESCE(SUM(used), 0) AS used FROM usage_counters WHERE tenant_id = 'ten_acme' AND meter = ?").get(meter) as { used: number }).used;
    const before = usage("exports.csv.monthly");
    const projectsBefore = usage("projects");
    const answer = await sidecar.check(consuming("reports.export", "req_slow_consume"));
    expect(answer.allow).toBe(false);
    expect(codes(answer)).toEqual(["policy_timeout"]);
    expect(usage("exports.csv.monthly")).toBe(before);
    // The next consuming Check goes to the replacement worker and is charged as usual.
    expect((await sidecar.check(consuming("projects.create", "req_fast_consume"))).allow).toBe(true);
    expect(usage("projects")).toBe(projectsBefore + 1);
  });

  it("replaces the terminated worker: the next Checks, slow and fast, are answered the same way", async () => {
    for (let i = 0; i < 3; i++) {
      expect(codes(await sidecar.check(slowCheck(`req_slow_again_${i}`)))).toEqual(["policy_timeout"]);
      expect((await sidecar.check(fastCheck(`req_fast_again_${i}`))).allow).toBe(true);
    }
  });
});

describe("calls that ended before their evaluation", () => {
  let sidecar: TestSidecar;
  beforeAll(async () => {
    // One worker with a long budget, so a slow Check holds it while another waits in the queue.
    sidecar = await startSidecar({ policyDir: slowBundle, config: { policyWorkers: 1, policyBudgetMs: 1500 } });
  });
  afterAll(() => sidecar.close());

  it("skips a Check whose deadline passed while it waited for a worker: not evaluated, not logged", async () => {
    const slow = sidecar.check(slowCheck("req_holds_the_worker"));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const expired = await new Promise<ServiceError>((resolve, reject) => {
      sidecar.client.check(
        CheckRequest.fromPartial(fastCheck("req_expired")),
        new Metadata(),
        { deadline: Date.now() + 200 },
        (error) => (error ? resolve(error) : reject(new Error("the expired call was answered"))),
      );
    });
    expect(expired.code).toBe(status.DEADLINE_EXCEEDED);
    expect(codes(await slow)).toEqual(["policy_timeout"]);
    // The worker is free again; what was queued behind the slow Check has been dispatched or skipped.
    expect((await sidecar.check(fastCheck("req_after"))).allow).toBe(true);
    expect(loggedFor(sidecar, "req_expired")).toEqual([]);
    expect(loggedFor(sidecar, "req_after")).toHaveLength(1);
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^bulkhead_decision_errors_total\{code="CALL_EXPIRED"\} 1$/m);
  });

  it("does not evaluate a call whose deadline has already passed or that was cancelled when it arrives", async () => {
    const input = (requestId: string) => validateCheck(toRawCheck(CheckRequest.fromPartial(fastCheck(requestId))));
    await expect(sidecar.bulkhead.decider.check(input("req_late"), Date.now() - 1)).rejects.toMatchObject({ code: "CALL_EXPIRED" });
    const cancelled = new AbortController();
    cancelled.abort();
    await expect(sidecar.bulkhead.decider.check(input("req_gone"), undefined, cancelled.signal)).rejects.toMatchObject({ code: "CALL_EXPIRED" });
    expect(loggedFor(sidecar, "req_late")).toEqual([]);
    expect(loggedFor(sidecar, "req_gone")).toEqual([]);
  });
});

describe("shutdown with a slow bundle loaded", () => {
  it("exits 0 within the drain deadline while slow Checks are queued and running", async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), "bulkhead-slow-shutdown-")), "b.db");
    const { child, grpcAddress } = await startSidecarProcess(dbPath, { BULKHEAD_POLICY_DIR: slowBundle, BULKHEAD_POLICY_BUDGET_MS: "250" });
    const client = new DecisionServiceClient(grpcAddress, credentials.createInsecure());
    try {
      // 80 slow Checks at 250 ms each on 2 workers: 10 s of queue, twice the drain deadline.
      const calls = Array.from({ length: 80 }, (_, i) =>
        new Promise<string>((resolve) => {
          client.check(CheckRequest.fromPartial(slowCheck(`req_queued_${i}`)), (error, answer) => resolve(error ? `error ${error.code}` : codes(answer).join()));
        }),
      );
      const first = await Promise.race(calls);
      expect(first).toBe("policy_timeout");
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      const signalledAt = performance.now();
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      // The drain deadline plus room for a busy machine; without the budget the
      // first evaluation alone holds the process for about a minute.
      expect(performance.now() - signalledAt).toBeLessThan(DRAIN_DEADLINE_MS + 10_000);
      // Every call ended: answered (denied) or failed, never allowed.
      for (const outcome of await Promise.all(calls)) expect(outcome).toMatch(/^policy_timeout$|^error \d+$/);
    } finally {
      client.close();
      child.kill("SIGKILL");
    }
  }, 60_000);
});

describe("a reply that comes in only because this thread looked late", () => {
  it("is still past the budget: judged by the worker's own evaluation time, not by when the reply was read", async () => {
    // About half a second per evaluation here; the budget is 100 ms. This
    // thread is then held (as a loaded machine or a long synchronous write
    // holds it) until the worker has long finished, so when the budget's wait
    // ends the reply is already there. CI once swapped in a slow candidate
    // that way: a late answer counted as an answer.
    const set = await PolicySet.load(await readPolicyBundle(faultyBundle("slow", 'input.action == "reports.export"', 4000)), {
      smokeTest: false,
      evaluation: { workers: 1, budgetMs: 100 },
    });
    try {
      const pending = set.trial(JSON.stringify({ action: "reports.export" }));
      const heldUntil = performance.now() + 4_000;
      while (performance.now() < heldUntil);
      const evaluation = await pending;
      expect(evaluation.kind).toBe("budget");
      // An input the fault does not touch is answered as before.
      expect((await set.trial(JSON.stringify({ action: "projects.read" }))).kind).toBe("result");
    } finally {
      await set.close();
    }
  });
});
