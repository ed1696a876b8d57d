import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One exported span as OTLP/JSON carries it, with its attributes flattened to plain values. */
export interface CollectedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  /** 0 unset, 1 ok, 2 error (OTLP's StatusCode). */
  statusCode: number;
  attributes: Record<string, unknown>;
  serviceName: unknown;
}

/**
 * A real OTLP/HTTP collector for tests: accepts POST /v1/traces with JSON
 * (the exporter's default encoding), keeps each raw body (to search for
 * secrets anywhere in what left the process) and the spans in it.
 */
export async function startOtlpCollector(): Promise<{ endpoint: string; spans: CollectedSpan[]; bodies: string[]; close(): Promise<void> }> {
  const spans: CollectedSpan[] = [];
  const bodies: string[] = [];
  const server: Server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      bodies.push(body);
      spans.push(...spansOf(JSON.parse(body)));
      response.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    bodies,
    close: () => new Promise((closed) => server.close(() => closed())),
  };
}

type AnyValue = { stringValue?: string; boolValue?: boolean; intValue?: number | string; doubleValue?: number };
type KeyValue = { key: string; value: AnyValue };

function spansOf(request: any): CollectedSpan[] {
  return (request.resourceSpans ?? []).flatMap((rs: any) => {
    const serviceName = flatten(rs.resource?.attributes ?? [])["service.name"];
    return (rs.scopeSpans ?? []).flatMap((ss: any) =>
      (ss.spans ?? []).map((s: any) => ({
        name: s.name,
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId ?? "",
        statusCode: s.status?.code ?? 0,
        attributes: flatten(s.attributes ?? []),
        serviceName,
      })),
    );
  });
}

function flatten(attributes: KeyValue[]): Record<string, unknown> {
  return Object.fromEntries(
    attributes.map(({ key, value }) => [key, value.stringValue ?? value.boolValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.doubleValue)]),
  );
}
