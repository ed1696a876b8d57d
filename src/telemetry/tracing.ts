import { context, createContextKey, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter } from "@opentelemetry/api";
import { BulkheadError } from "../errors.js";

/**
 * OpenTelemetry spans for the calls an operator follows across services
 * (README, Traces). Only @opentelemetry/api (a no-op without an SDK) is
 * imported statically: the SDK, the OTLP exporter and the propagator are
 * imported by startTracing, and only when an endpoint is configured, so a
 * sidecar without tracing loads none of them and its handlers pay one branch.
 */

export type SpanValue = string | number | boolean;

/** What handlers (and the decider) record on the span of the call they serve. */
export interface CallSpan {
  set(attributes: Record<string, SpanValue | undefined>): void;
  /** The tenant and plan of a resolved context; distinct ones (a BatchCheck across tenants) are joined with ','. */
  resolved(tenantId: string, plan: string): void;
  /** Marks the call failed with a code (a BulkheadError code, a gRPC status name, an HTTP status), never a message. */
  fail(code: string): void;
}

/** Reads `traceparent` / `tracestate` from wherever the call carried them (gRPC metadata, HTTP headers). */
export type TraceCarrier = (key: string) => string | undefined;

export interface Tracing {
  readonly enabled: boolean;
  /** Runs `work` inside a server span named `name` whose parent is the caller's traceparent, if any. */
  inSpan<T>(name: string, carrier: TraceCarrier, work: (span: CallSpan) => Promise<T>): Promise<T>;
  /** Exports what is buffered now (tests, and anyone who wants the spans before the batch delay). */
  flush(): Promise<void>;
  /** Exports what is buffered and stops; the sidecar calls it on close. */
  shutdown(): Promise<void>;
}

export interface TracingConfig {
  /** OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. */
  endpoint: string;
  serviceName: string;
}

/** Longest close() waits for the last spans to be exported. */
const SHUTDOWN_BUDGET_MS = 3_000;

const NO_SPAN: CallSpan = { set() {}, resolved() {}, fail() {} };

export const TRACING_OFF: Tracing = {
  enabled: false,
  inSpan: (_name, _carrier, work) => work(NO_SPAN),
  flush: async () => {},
  shutdown: async () => {},
};

const CALL_SPAN = createContextKey("bulkhead.call_span");

/**
 * The span of the call being served, or a no-op one. Code below the handlers
 * (the decider, where the tenant context is resolved) records through it
 * without being handed a span; with tracing off the active context is the
 * root one and this returns NO_SPAN.
 */
export function currentCallSpan(): CallSpan {
  return (context.active().getValue(CALL_SPAN) as CallSpan | undefined) ?? NO_SPAN;
}

/** Builds the tracer when `config` names an endpoint; TRACING_OFF otherwise. */
export async function startTracing(config: TracingConfig | undefined): Promise<Tracing> {
  if (!config) return TRACING_OFF;
  const [sdk, { OTLPTraceExporter }, { resourceFromAttributes }, { W3CTraceContextPropagator }, { AsyncLocalStorageContextManager }, { ATTR_SERVICE_NAME }] =
    await Promise.all([
      import("@opentelemetry/sdk-trace-base"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/core"),
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/semantic-conventions"),
    ]);
  // The context manager is process-wide (one per process, shared by sidecars a test starts);
  // it is what lets currentCallSpan() see the call's span across awaits. A second call is refused, harmlessly.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  // The provider stays local (not registered globally), so two sidecars in one process keep their own exporters.
  const provider = new sdk.BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter({ url: config.endpoint }))],
  });
  const tracer = provider.getTracer("bulkhead");
  const propagator = new W3CTraceContextPropagator();
  const getter: TextMapGetter<TraceCarrier> = { get: (carrier, key) => carrier(key), keys: () => ["traceparent", "tracestate"] };
  return {
    enabled: true,
    async inSpan(name, carrier, work) {
      const parent = propagator.extract(ROOT_CONTEXT, carrier, getter);
      const span = tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
      const callSpan = new RecordingCallSpan(span);
      try {
        return await context.with(trace.setSpan(parent, span).setValue(CALL_SPAN, callSpan), () => work(callSpan));
      } catch (error) {
        // The code only: messages may quote caller input.
        callSpan.fail(error instanceof BulkheadError ? error.code : "INTERNAL");
        throw error;
      } finally {
        callSpan.end();
      }
    },
    flush: () => provider.forceFlush(),
    // Bounded: an unreachable collector must not hold up the sidecar's exit (the exporter's own timeout is 10 s).
    shutdown: () => Promise.race([provider.shutdown(), new Promise<void>((done) => setTimeout(done, SHUTDOWN_BUDGET_MS).unref())]),
  };
}

class RecordingCallSpan implements CallSpan {
  private readonly tenants = new Set<string>();
  private readonly plans = new Set<string>();

  constructor(private readonly span: Span) {}

  set(attributes: Record<string, SpanValue | undefined>): void {
    for (const [key, value] of Object.entries(attributes)) if (value !== undefined) this.span.setAttribute(key, value);
  }

  resolved(tenantId: string, plan: string): void {
    if (tenantId) this.tenants.add(tenantId);
    if (plan) this.plans.add(plan);
  }

  fail(code: string): void {
    this.span.setAttribute("bulkhead.error_code", code);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }

  end(): void {
    if (this.tenants.size > 0) this.span.setAttribute("bulkhead.tenant_id", [...this.tenants].sort().join(","));
    if (this.plans.size > 0) this.span.setAttribute("bulkhead.plan", [...this.plans].sort().join(","));
    this.span.end();
  }
}

/** A carrier over gRPC metadata (keys are lower-case there). */
export function metadataCarrier(metadata: { get(key: string): unknown[] }): TraceCarrier {
  return (key) => {
    const value = metadata.get(key)[0];
    return typeof value === "string" ? value : undefined;
  };
}

/** A carrier over Node's HTTP request headers. */
export function headerCarrier(headers: Record<string, string | string[] | undefined>): TraceCarrier {
  return (key) => {
    const value = headers[key];
    return typeof value === "string" ? value : undefined;
  };
}
