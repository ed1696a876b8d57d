import { loadPolicy, type LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { RoleCatalog } from "../context/role-catalog.js";
import type { CallWindow } from "./call-window.js";
import { normaliseDecision, type PolicyDecision } from "./decision-result.js";
import { EvaluationPool, type Evaluation } from "./evaluation-pool.js";
import type { PolicyBundle, PolicyData } from "./policy-bundle.js";
import type { PolicyInput } from "./policy-input.js";
import { compileWasm, type WasmModule } from "./wasm-host.js";
import { smokeCases, smokeFailure } from "./smoke-cases.js";

export const ENTRYPOINT = "bulkhead/decision";

/** Wasm memory is bounded so a runaway evaluation fails instead of eating the host. */
const MEMORY = { initial: 8, maximum: 1024 }; // 64 KiB pages: 512 KiB .. 64 MiB

/** The reason of a deny given because the policy ran past its time budget (docs/design.md). */
export const POLICY_TIMEOUT = "policy_timeout";

/** Where serving evaluations run: worker threads, each evaluation cut off at the budget. */
export interface EvaluationSettings {
  workers: number;
  budgetMs: number;
}

/** Sees every pooled evaluation: the input as JSON and how it ended (recent-input sample, swap watchdog). */
export type EvaluationObserver = (json: string, evaluation: Evaluation) => void;

/**
 * One loaded, immutable policy bundle. Loading checks builtins and, unless
 * told otherwise, runs the smoke cases. A served set evaluates in an
 * EvaluationPool with a time budget; a set without one (xtest, policy diff)
 * evaluates on the calling thread.
 */
export class PolicySet implements RoleCatalog {
  /** Set by the owner (PolicyManager) to watch this set's evaluations. */
  observer: EvaluationObserver | undefined;

  /**
   * Whether the compiled policy may read `input.context.request_id`. OPA
   * compiles every field name a rule names into the module's string
   * constants, so a bundle without the text cannot name it; the decision
   * cache then leaves the request id out of its key (ADR 68).
   */
  readonly readsRequestId: boolean;

  private constructor(
    private readonly policy: LoadedPolicy,
    readonly data: PolicyData,
    readonly revision: string,
    private readonly pool: EvaluationPool | null,
    wasm: Buffer,
  ) {
    this.readsRequestId = wasm.includes("request_id");
  }

  /**
   * `smokeTest: false` is for analysis tools (xtest, policy diff) that must see
   * what a candidate policy would do, including a broken one, and for the
   * PolicyManager, which smoke-tests in the pool (candidate-trial.ts) so a
   * slow candidate cannot hold this thread.
   */
  static async load(bundle: PolicyBundle, options: { smokeTest?: boolean; evaluation?: EvaluationSettings } = {}): Promise<PolicySet> {
    let policy: LoadedPolicy;
    let module: WasmModule;
    try {
      module = await compileWasm(bundle.wasm);
      policy = await loadPolicy(module, { ...MEMORY });
    } catch (thrown) {
      throw new Error(`policy.wasm does not load: ${describe(thrown)}`);
    }
    const missing = requiredBuiltins(policy).filter((name) => !HOST_BUILTINS.has(name));
    if (missing.length > 0) {
      throw new Error(`policy needs builtins this host does not provide: ${missing.join(", ")}`);
    }
    if (!(ENTRYPOINT in (policy.entrypoints as Record<string, number>))) {
      throw new Error(`policy.wasm has no entrypoint ${ENTRYPOINT}`);
    }
    policy.setData(bundle.data);
    const pool = options.evaluation
      ? await EvaluationPool.start({
          module, data: bundle.data, entrypoint: ENTRYPOINT, memory: MEMORY, size: options.evaluation.workers, budgetMs: options.evaluation.budgetMs,
        })
      : null;
    const set = new PolicySet(policy, bundle.data, bundle.revision, pool, bundle.wasm);
    if (options.smokeTest ?? true) await set.smokeTest();
    return set;
  }

  /**
   * Evaluates within the time budget without blocking this thread. A call
   * that ended while it waited for a worker is rejected unevaluated
   * (CALL_EXPIRED); a budget breach is a deny
   * with `policy_timeout`; a trap or an exhausted heap throws.
   */
  async evaluateBudgeted(input: PolicyInput, call?: CallWindow): Promise<PolicyDecision> {
    if (!this.pool) return this.evaluate(input);
    const json = JSON.stringify(input);
    return this.toDecision(this.observed(json, await this.pool.evaluate(json, call)), input);
  }

  /**
   * The same inside a write transaction, which cannot await: the thread waits
   * for the synchronous lane for at most the budget (ADR 46).
   */
  evaluateInWrite(input: PolicyInput): PolicyDecision {
    if (!this.pool) return this.evaluate(input);
    const json = JSON.stringify(input);
    return this.toDecision(this.observed(json, this.pool.evaluateSync(json)), input);
  }

  /** One raw pooled evaluation of JSON input, not observed: what a candidate's trial replays. */
  trial(json: string): Promise<Evaluation> {
    if (!this.pool) throw new Error("only a pooled policy set can be trialled");
    return this.pool.evaluate(json);
  }

  get budgetMs(): number | undefined {
    return this.pool?.budgetMs;
  }

  /** No longer the serving set: let what it was given finish, then stop its workers. */
  retire(): void {
    this.pool?.retire();
  }

  /** Stops its workers now (shutdown); anything still running fails closed. */
  close(): Promise<void> {
    return this.pool?.close() ?? Promise.resolve();
  }

  /** Turns a pooled evaluation into a decision, failing closed. */
  toDecision(evaluation: Evaluation, input: PolicyInput): PolicyDecision {
    switch (evaluation.kind) {
      case "result":
        return normaliseDecision(evaluation.resultSet, input.action, this.data);
      case "budget":
        return {
          allow: false,
          reasons: [{ code: POLICY_TIMEOUT, message: `policy evaluation ran past its ${this.budgetMs} ms budget`, details: { budget_ms: String(this.budgetMs) } }],
        };
      case "memory":
        throw new Error(`policy evaluation exhausted the Wasm memory: ${evaluation.message}`);
      case "trap":
        throw new Error(`policy evaluation failed: ${evaluation.message}`);
    }
  }

  private observed(json: string, evaluation: Evaluation): Evaluation {
    this.observer?.(json, evaluation);
    return evaluation;
  }

  /** Evaluates the entrypoint on this thread. Throws (a coded error is added by the caller) on a trap. */
  evaluate(input: PolicyInput): PolicyDecision {
    let resultSet: unknown;
    try {
      resultSet = this.policy.evaluate(input, ENTRYPOINT);
    } catch (thrown) {
      // opa-wasm throws plain strings and objects; give them a shape here.
      throw new Error(`policy evaluation failed: ${describe(thrown)}`);
    }
    return normaliseDecision(resultSet, input.action, this.data);
  }

  /**
   * Size of the instance's linear memory. opa-wasm evaluates from the same
   * heap base each time, so this reaches a plateau and stays there; the
   * benchmark reports it before and after a run to show that.
   */
  get wasmMemoryBytes(): number {
    return (this.policy.mem as unknown as { buffer: ArrayBuffer }).buffer.byteLength;
  }

  billingAccessOf(status: string): string | undefined {
    return Object.hasOwn(this.data.bulkhead.billing_access, status) ? this.data.bulkhead.billing_access[status] : undefined;
  }

  /** The flag an action's catalog entry names (a Check for it evaluates the flag), if any. */
  flagOf(action: string): string | undefined {
    return Object.hasOwn(this.data.bulkhead.actions, action) ? this.data.bulkhead.actions[action]!.flag : undefined;
  }

  catalogPermissions(): readonly string[] {
    return [...new Set(Object.values(this.data.bulkhead.actions).map((a) => a.permission))].sort();
  }

  permissionsOf(role: string): readonly string[] | undefined {
    return Object.hasOwn(this.data.bulkhead.roles, role) ? this.data.bulkhead.roles[role] : undefined;
  }

  private async smokeTest(): Promise<void> {
    for (const smoke of smokeCases(this.data)) {
      const failure = smokeFailure(smoke, await this.evaluateBudgeted(smoke.input));
      if (failure) throw new Error(failure);
    }
  }
}

/** Builtins opa-wasm implements in JavaScript; the rest must be compiled into the Wasm. */
const HOST_BUILTINS: ReadonlySet<string> = (() => {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve("@open-policy-agent/opa-wasm"));
  return new Set(Object.keys(require(join(root, "builtins", "index.js")) as object));
})();

/** Names of the builtins the module will call out to the host for. */
function requiredBuiltins(policy: LoadedPolicy): string[] {
  type Exports = Record<string, (...args: number[]) => number>;
  const holder = policy.wasmInstance as unknown as { instance?: { exports: Exports }; exports: Exports };
  const exports = (holder.instance ?? holder).exports;
  const address = exports.opa_json_dump!(exports.builtins!());
  const bytes = new Uint8Array((policy.mem as unknown as { buffer: ArrayBuffer }).buffer);
  let end = address;
  while (bytes[end] !== 0) end++;
  const table = JSON.parse(new TextDecoder().decode(bytes.subarray(address, end))) as Record<string, number>;
  return Object.keys(table);
}

function describe(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  if (typeof thrown === "string") return thrown;
  return JSON.stringify(thrown);
}
