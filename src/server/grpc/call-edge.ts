import type { Metadata, ServerInterceptingCall, ServerInterceptingCallInterface, ServerInterceptor } from "@grpc/grpc-js";
import { attachCallFields, type CallFields } from "../../log/call-fields.js";
import type { Logger } from "../../log/logger.js";
import { logCall, type CallRecord, type SentStatus } from "./call-log.js";
import { MethodMetrics, type RpcMetrics } from "./rpc-metrics.js";

type Listener = Parameters<ServerInterceptingCallInterface["start"]>[0];

export interface CallEdgeDeps {
  /** Per-call counts and latencies (rpc-metrics.ts). */
  metrics?: RpcMetrics | undefined;
  /** A line per call (call-log.ts). */
  logger?: Logger | undefined;
}

/**
 * The one grpc-js server interceptor (ADR 92): every call passes it, so each
 * RPC, present and future, is counted, timed (ADR 32) and logged (issue 17)
 * with its real final status, including calls refused before a handler ran.
 * One object per call is both the listener the handler's messages pass
 * through and the call the handler answers through; what is per method (the
 * metric label sets) is made once, at the method's first call. Undefined
 * when there is neither metrics nor a logger: then no interceptor runs.
 */
export function callEdgeInterceptor(deps: CallEdgeDeps): ServerInterceptor | undefined {
  const { metrics, logger } = deps;
  if (!metrics && !logger) return undefined;
  const methods = new Map<string, MethodMetrics>();
  return (method, next) => {
    let counted: MethodMetrics | undefined;
    if (metrics) {
      counted = methods.get(method.path);
      if (counted === undefined) methods.set(method.path, (counted = new MethodMetrics(metrics, method.path, method.responseStream)));
    }
    // grpc-js types an interceptor's result as its ServerInterceptingCall class, and uses only
    // the interface; the class would add a responder, a listener and closures per call.
    return new EdgeCall(next, method.path, counted, logger) as unknown as ServerInterceptingCall;
  };
}

class EdgeCall implements ServerInterceptingCallInterface, Listener, CallRecord {
  readonly started = performance.now();
  metadata: Metadata | undefined = undefined;
  request: unknown = undefined;
  response: unknown = undefined;
  /** For the log line: what the handler's callees learn (noted through the metadata, call-fields.ts). */
  readonly fields: CallFields | undefined;
  private allow: boolean | undefined = undefined;
  private listener: Listener | undefined = undefined;

  constructor(
    private readonly next: ServerInterceptingCallInterface,
    readonly path: string,
    private readonly metrics: MethodMetrics | undefined,
    private readonly logger: Logger | undefined,
  ) {
    this.fields = logger ? {} : undefined;
  }

  // The listener side: what the client sent, on its way to the handler.

  start(listener: Listener): void {
    this.listener = listener;
    this.next.start(this);
  }

  onReceiveMetadata(metadata: Metadata): void {
    this.metadata = metadata;
    if (this.fields) attachCallFields(metadata, this.fields);
    this.listener!.onReceiveMetadata(metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.request ??= message; // a stream's first request names its tenant
    this.listener!.onReceiveMessage(message);
  }

  onReceiveHalfClose(): void {
    this.listener!.onReceiveHalfClose();
  }

  onCancel(): void {
    this.listener!.onCancel();
  }

  // The responder side: what the handler answers, on its way to the client.

  sendMetadata(metadata: Metadata): void {
    this.next.sendMetadata(metadata);
  }

  sendMessage(message: unknown, callback: () => void): void {
    this.response ??= message;
    if (typeof (message as { allow?: unknown } | null)?.allow === "boolean") this.allow = (message as { allow: boolean }).allow;
    this.next.sendMessage(message, callback);
  }

  sendStatus(sent: SentStatus): void {
    this.metrics?.record(sent.code, (performance.now() - this.started) / 1000, this.allow);
    if (this.logger) logCall(this.logger, this, sent);
    this.next.sendStatus(sent);
  }

  startRead(): void {
    this.next.startRead();
  }

  getPeer() {
    return this.next.getPeer();
  }

  getDeadline() {
    return this.next.getDeadline();
  }

  getHost() {
    return this.next.getHost();
  }

  getAuthContext() {
    return this.next.getAuthContext();
  }

  getConnectionInfo() {
    return this.next.getConnectionInfo();
  }

  getMetricsRecorder() {
    return this.next.getMetricsRecorder();
  }
}
