import { status } from "@grpc/grpc-js";
import type { Metrics } from "../../metrics.js";

const DECISION_SERVICE = "/bulkhead.v1.DecisionService/";

export type RpcMetrics = Pick<Metrics, "rpcRequests" | "rpcDuration" | "decisionDuration">;

/**
 * Counts and times every gRPC call at the server's edge, whatever its
 * handler: method and final status name, and for DecisionService the
 * result (a unary Check's allow or deny). Recorded by the one call
 * interceptor (call-edge.ts, ADR 92), so a new RPC cannot be left out.
 *
 * One of these per method, made at the method's first call: the label
 * objects are built once per method and status code, not per call.
 */
export class MethodMetrics {
  /** `DecisionService`'s RPC name (`Check`), or undefined for every other service. */
  private readonly rpc: string | undefined;
  private readonly byCode = new Map<number, { call: { method: string; code: string }; decision: { rpc: string; result: string } | undefined }>();
  private readonly results: { allow: { rpc: string; result: string }; deny: { rpc: string; result: string }; answered: { rpc: string; result: string } } | undefined;

  constructor(
    private readonly metrics: RpcMetrics,
    private readonly path: string,
    private readonly responseStream: boolean,
  ) {
    this.rpc = path.startsWith(DECISION_SERVICE) ? path.slice(DECISION_SERVICE.length) : undefined;
    const rpc = this.rpc;
    this.results = rpc === undefined ? undefined : {
      allow: { rpc, result: "allow" },
      deny: { rpc, result: "deny" },
      answered: { rpc, result: "answered" },
    };
  }

  /** The final status of one call, `seconds` after it started; `allow` is a unary Check's answer, if it sent one. */
  record(code: number, seconds: number, allow: boolean | undefined): void {
    const labels = this.labelsOf(code);
    this.metrics.rpcRequests.inc(labels.call);
    this.metrics.rpcDuration.observe(labels.call, seconds);
    if (this.results === undefined) return;
    const decision = labels.decision ?? (this.responseStream || allow === undefined ? this.results.answered : allow ? this.results.allow : this.results.deny);
    this.metrics.decisionDuration.observe(decision, seconds);
  }

  private labelsOf(code: number) {
    let labels = this.byCode.get(code);
    if (labels === undefined) {
      const name = status[code] ?? String(code);
      // A failed DecisionService call's result is its status name; an OK one's depends on the answer.
      labels = { call: { method: this.path, code: name }, decision: this.rpc !== undefined && name !== "OK" ? { rpc: this.rpc, result: name } : undefined };
      this.byCode.set(code, labels);
    }
    return labels;
  }
}
