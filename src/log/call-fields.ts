import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Fields the code below a gRPC handler learns and the call's log line should
 * carry (the plan of the tenant a Check resolved to): the call-log
 * interceptor runs the handler inside a store, and `noteCallFields` adds to
 * it without being handed anything. Outside a call it does nothing.
 */
export type CallFields = Record<string, unknown>;

const CALL_FIELDS = new AsyncLocalStorage<Record<string, unknown>>();

export function withCallFields<T>(fields: Record<string, unknown>, work: () => T): T {
  return CALL_FIELDS.run(fields, work);
}

export function noteCallFields(fields: Record<string, unknown>): void {
  const store = CALL_FIELDS.getStore();
  if (store) Object.assign(store, fields);
}
