import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WatchdogThresholds } from "../../src/engine/swap-watchdog.js";
import { DEFAULT_POLICY_DIR } from "../../src/paths.js";
import { faultyBundle, TAGGED_TENANT } from "../support/policy-builds.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";

// Issue 15 item 2: a bundle that passed the smoke cases but trapped on tenants
// with tags replaced the good one, and so did ones that exhausted the heap or
// took 1.5 s per real evaluation. The faults below are real compiled bundles
// that strike only on a tenant with tags (ten_acme has ["beta"]; the smoke
// cases and ten_globex have none). The slow ones are slow by a wide margin:
// once V8 has tiered the spin up to optimised code it runs about 3x faster
// than at first (9,000 x 9,000 comparisons took 3 s on a quiet machine and
// 0.94 s in a full run), and a replay inside its budget is no fault.

/** A sidecar watching its own live bundle directory, with its log kept. */
async function watchingSidecar(budgetMs: number, watchdog?: Partial<WatchdogThresholds>) {
  const liveDir = mkdtempSync(join(tmpdir(), "bulkhead-guard-policy-"));
  const publish = (bundleDir: string) => {
    for (const file of ["policy.wasm", "data.json", "bundle.json"]) cpSync(join(bundleDir, file), join(liveDir, file));
  };
  publish(DEFAULT_POLICY_DIR);
  const lines: string[] = [];
  const sidecar = await startSidecar({
    policyDir: liveDir,
    // One worker per replayed input, so a slow candidate's replays hit their budgets together, well
    // inside the trial's total budget, however slow a loaded machine is to respawn workers.
    config: { watchPolicies: true, policyBudgetMs: budgetMs, policyWatchdog: watchdog, policyWorkers: 4 },
    runtime: { log: (line) => lines.push(line) },
  });
  const waitFor = async (predicate: () => boolean, what: string) => {
    // A deadline for an event, not a speed bound: in the full suite on two cores a refusal has taken more than 20 s.
    for (let i = 0; i < 2200; i++) {
      if (predicate()) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`timed out waiting for ${what}; policy status ${JSON.stringify(sidecar.bulkhead.policies.status)}`);
  };
  const get = async (path: string) => fetch(`http://127.0.0.1:${sidecar.httpPort}${path}`);
  return { sidecar, publish, lines, waitFor, get, goodRevision: sidecar.bulkhead.policies.revision };
}

const acmeRead = () => checkRequest("ten_acme", "usr_alice", "projects.read");
const globexRead = () => checkRequest("ten_globex", "usr_carol", "projects.read");

describe("a candidate bundle replays recent real inputs before it may serve", () => {
  let h: Awaited<ReturnType<typeof watchingSidecar>>;
  beforeAll(async () => {
    // A budget that filling the 64 MiB heap (about 0.3 s) stays well inside, so
    // each fault is reported as itself.
    h = await watchingSidecar(1000);
    // Real traffic, tagged and untagged, so the sample holds both shapes.
    for (const request of [acmeRead(), globexRead(), acmeRead()]) expect((await h.sidecar.check(request)).allow).toBe(true);
  });
  afterAll(() => h.sidecar.close());

  const refused = async (bundle: string, fault: RegExp) => {
    const rejectedBefore = h.sidecar.bulkhead.policies.status.rejected;
    h.publish(bundle);
    await h.waitFor(() => h.sidecar.bulkhead.policies.status.rejected > rejectedBefore, "the refusal");
    const policy = h.sidecar.bulkhead.policies.status;
    expect(policy.state).toBe("degraded");
    expect(policy.lastError).toMatch(fault);
    expect(h.lines.some((line) => fault.test(line) && line.includes(`still serving ${h.goodRevision}`))).toBe(true);
    // The old bundle keeps answering, tagged tenant included.
    const answer = await h.sidecar.check(acmeRead());
    expect(answer.allow).toBe(true);
    expect(answer.policyRevision).toBe(h.goodRevision);
    expect(((await (await h.get("/healthz")).json()) as { status: string }).status).toBe("degraded");
  };

  it("refuses a bundle that traps only on tenants with tags (it passes the smoke cases)", async () => {
    await refused(faultyBundle("trap", TAGGED_TENANT), /replaying recent input \d+ of \d+ trapped: .*var assignment conflict/);
  });

  it("refuses a bundle that is slow only on real input (10 s or more per tagged evaluation, budget 1 s)", async () => {
    await refused(faultyBundle("slow", TAGGED_TENANT, 30_000), /replaying recent input \d+ of \d+ ran past the evaluation budget of 1000 ms/);
  }, 60_000);

});

describe("a candidate bundle that exhausts the Wasm memory on real input", () => {
  it("is refused as exactly that", async () => {
    // Its own sidecar with a 4 s budget: filling the 64 MiB heap takes about
    // 0.3 s on a quiet machine, but with the suite and other work on 2 cores it
    // once took past 1 s and was reported as slow instead (still refused).
    const h = await watchingSidecar(4000);
    try {
      for (const request of [acmeRead(), globexRead(), acmeRead()]) expect((await h.sidecar.check(request)).allow).toBe(true);
      h.publish(faultyBundle("memory", TAGGED_TENANT));
      await h.waitFor(() => h.sidecar.bulkhead.policies.status.rejected > 0, "the refusal");
      expect(h.sidecar.bulkhead.policies.status.lastError).toMatch(/replaying recent input \d+ of \d+ exhausted the Wasm memory/);
      const answer = await h.sidecar.check(acmeRead());
      expect(answer.allow).toBe(true);
      expect(answer.policyRevision).toBe(h.goodRevision);
    } finally {
      await h.sidecar.close();
    }
  });
});

describe("a bundle that breaches the watchdog after its swap is rolled back", () => {
  const WATCH = { minEvaluations: 5, windowMs: 60_000 };

  // Only untagged traffic before the swap: the replay cannot see the fault,
  // the bundle is swapped in, and the first tagged Checks find it.
  async function swapInBlind(bundle: string) {
    const h = await watchingSidecar(250, WATCH);
    for (let i = 0; i < 3; i++) expect((await h.sidecar.check(globexRead())).allow).toBe(true);
    h.publish(bundle);
    await h.waitFor(() => h.sidecar.bulkhead.policies.revision !== h.goodRevision, "the swap");
    const badRevision = h.sidecar.bulkhead.policies.revision;
    expect(h.sidecar.bulkhead.policies.status.state).toBe("ready");
    return { ...h, badRevision };
  }

  async function expectRolledBack(h: Awaited<ReturnType<typeof swapInBlind>>, why: RegExp) {
    const policy = h.sidecar.bulkhead.policies.status;
    expect(policy.revision).toBe(h.goodRevision);
    expect(policy.state).toBe("degraded");
    expect(policy.rollbacks).toBe(1);
    expect(policy.rolledBack?.revision).toBe(h.badRevision);
    expect(policy.rolledBack?.reason).toMatch(why);
    expect(h.lines).toContainEqual(expect.stringMatching(new RegExp(`policy bundle ${h.badRevision} rolled back to ${h.goodRevision}: `)));
    const health = (await (await h.get("/healthz")).json()) as { status: string; policy: typeof policy };
    expect(health.status).toBe("degraded");
    expect(health.policy.rolledBack?.revision).toBe(h.badRevision);
    const metrics = await (await h.get("/metrics")).text();
    expect(metrics).toMatch(/^bulkhead_policy_rollbacks_total 1$/m);
    expect(metrics).toMatch(/^bulkhead_policy_degraded 1$/m);
    // The last good bundle answers the tagged tenant again, by itself.
    const answer = await h.sidecar.check(acmeRead());
    expect(answer.allow).toBe(true);
    expect(answer.policyRevision).toBe(h.goodRevision);
  }

  it("rolls back a bundle that traps on tenants with tags; until then those Checks fail closed", async () => {
    const h = await swapInBlind(faultyBundle("trap", TAGGED_TENANT));
    try {
      for (let i = 0; i < WATCH.minEvaluations; i++) {
        const error = await h.sidecar.check(acmeRead()).then(() => "answered", (e) => e);
        expect(error.code).toBe(status.INTERNAL);
        expect(error.metadata.get("bulkhead-error-code")).toEqual(["POLICY_EVALUATION_FAILED"]);
      }
      await expectRolledBack(h, /error rate 100\.0% over its first 5 evaluations is above 5\.0%/);
      // The rolled-back files are still in the directory: a change event does not bring them back.
      await h.sidecar.bulkhead.policies.reload();
      expect(h.sidecar.bulkhead.policies.revision).toBe(h.goodRevision);
    } finally {
      await h.sidecar.close();
    }
  });

  it("rolls back a bundle that runs past the budget on tenants with tags; until then those Checks are denied", async () => {
    const h = await swapInBlind(faultyBundle("slow", TAGGED_TENANT, 20_000));
    try {
      for (let i = 0; i < WATCH.minEvaluations; i++) {
        const answer = await h.sidecar.check(acmeRead());
        expect(answer.allow).toBe(false);
        expect(codes(answer)).toEqual(["policy_timeout"]);
      }
      await expectRolledBack(h, /error rate 100\.0% over its first 5 evaluations/);
    } finally {
      await h.sidecar.close();
    }
  });
});
