import { BulkheadError, wrapError, type ErrorCategory } from "../../errors.js";

/** The one table from error category to HTTP status (the gRPC twin is grpc-errors.ts). */
const HTTP_STATUS: Record<ErrorCategory, number> = {
  invalid_argument: 400,
  not_found: 404,
  already_exists: 409,
  failed_precondition: 412,
  unauthenticated: 401,
  permission_denied: 403,
  unavailable: 503,
  deadline_exceeded: 504,
  internal: 500,
};

/** A thrown value as a coded error: unknown throws become INTERNAL, never an answer. */
export function asBulkheadError(thrown: unknown): BulkheadError {
  return thrown instanceof BulkheadError ? thrown : wrapError("INTERNAL", "internal error", thrown);
}

export function httpStatusOf(error: BulkheadError): number {
  return HTTP_STATUS[error.category];
}

/** The JSON body of an HTTP error: the stable code, the message and the faulty field, if any. */
export function errorBody(error: BulkheadError): { error: { code: string; message: string; field?: string } } {
  return { error: { code: error.code, message: error.message, ...(error.field && { field: error.field }) } };
}
