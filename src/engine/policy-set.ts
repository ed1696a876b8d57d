import { loadPolicy, type LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { RoleCatalog } from "../context/role-catalog.js";
import { normaliseDecision, type PolicyDecision } from "./decision-result.js";
import type { PolicyBundle, PolicyData } from "./policy-bundle.js";
import type { PolicyInput } from "./policy-input.js";
import { smokeCases } from "./smoke-cases.js";

export const ENTRYPOINT = "bulkhead/decision";

/** Wasm memory is bounded so a runaway evaluation fails instead of eating the host. */
const MEMORY = { initial: 8, maximum: 1024 }; // 64 KiB pages: 512 KiB .. 64 MiB

/**
 * One loaded, immutable policy bundle. Loading checks builtins and runs the
 * smoke cases; a PolicySet that exists is one that passed them.
 */
export class PolicySet implements RoleCatalog {
  private constructor(
    private readonly policy: LoadedPolicy,
    readonly data: PolicyData,
    readonly revision: string,
  ) {}

  /**
   * `smokeTest: false` is for analysis tools (xtest, policy diff) that must see
   * what a candidate policy would do, including a broken one; serving always
   * smoke-tests.
   */
  static async load(bundle: PolicyBundle, options: { smokeTest?: boolean } = {}): Promise<PolicySet> {
    let policy: LoadedPolicy;
    try {
      policy = await loadPolicy(bundle.wasm, { ...MEMORY });
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
    const set = new PolicySet(policy, bundle.data, bundle.revision);
    if (options.smokeTest ?? true) set.smokeTest();
    return set;
  }

  /** Evaluates the entrypoint. Throws (a coded error is added by the caller) on a trap. */
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

  catalogPermissions(): readonly string[] {
    return [...new Set(Object.values(this.data.bulkhead.actions).map((a) => a.permission))].sort();
  }

  permissionsOf(role: string): readonly string[] | undefined {
    return Object.hasOwn(this.data.bulkhead.roles, role) ? this.data.bulkhead.roles[role] : undefined;
  }

  private smokeTest(): void {
    const anyAction = Object.keys(this.data.bulkhead.actions)[0];
    if (anyAction === undefined) throw new Error("the action catalog is empty");
    for (const smoke of smokeCases(anyAction)) {
      const decision = this.evaluate(smoke.input);
      if (decision.allow || decision.reasons[0]?.code !== smoke.firstReason) {
        throw new Error(
          `smoke case "${smoke.name}" expected deny with ${smoke.firstReason}, got ` +
            JSON.stringify({ allow: decision.allow, reasons: decision.reasons.map((r) => r.code) }),
        );
      }
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
