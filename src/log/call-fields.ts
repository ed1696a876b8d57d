/**
 * Fields the code below a gRPC handler learns and the call's log line should
 * carry (the plan of the tenant a Check resolved to). The call interceptor
 * (call-edge.ts) makes one object per call and attaches it to the call's
 * request metadata, the one object both it and the handler hold; the handler
 * hands it down explicitly (Decider.check's `fields`), so nothing runs the
 * call inside an AsyncLocalStorage (ADR 92: on Node 20 one run() turns on
 * promise hooks for every promise in the process).
 */
export type CallFields = Record<string, unknown>;

const BY_METADATA = new WeakMap<object, CallFields>();

export function attachCallFields(metadata: object, fields: CallFields): void {
  BY_METADATA.set(metadata, fields);
}

/** The fields of the call whose request metadata this is; undefined when no interceptor logs calls. */
export function callFieldsOf(call: { readonly metadata: object }): CallFields | undefined {
  return BY_METADATA.get(call.metadata);
}
