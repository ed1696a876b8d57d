import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { BulkheadError, wrapError, type ErrorCategory } from "../../errors.js";

/** The one table from error category to gRPC status. */
const GRPC_STATUS: Record<ErrorCategory, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  failed_precondition: status.FAILED_PRECONDITION,
  unauthenticated: status.UNAUTHENTICATED,
  permission_denied: status.PERMISSION_DENIED,
  unavailable: status.UNAVAILABLE,
  deadline_exceeded: status.DEADLINE_EXCEEDED,
  internal: status.INTERNAL,
};

/**
 * Any thrown value -> a gRPC error. The stable code travels in the
 * `bulkhead-error-code` trailer and the faulty field in `bulkhead-field`, so
 * clients need not parse messages. Unknown throws become INTERNAL.
 */
export function toGrpcError(thrown: unknown): Partial<ServiceError> {
  const error =
    thrown instanceof BulkheadError
      ? thrown
      : isSqliteError(thrown)
        ? wrapError("STORE_FAILED", "the store failed", thrown)
        : wrapError("INTERNAL", "internal error", thrown);
  const metadata = new Metadata();
  metadata.set("bulkhead-error-code", error.code);
  if (error.field) metadata.set("bulkhead-field", error.field);
  ERRORS_BY_TRAILER.set(metadata, error);
  return { code: GRPC_STATUS[error.category], details: error.message, metadata };
}

/**
 * The error behind a status, by its trailer object: grpc-js hands the
 * metadata of a failed call to the interceptors unchanged, so the call log
 * can print the cause (a stack, the SqliteError) that the status itself
 * cannot carry. Weak: an entry goes with its call.
 */
const ERRORS_BY_TRAILER = new WeakMap<Metadata, BulkheadError>();

export function errorBehind(trailer: Metadata): BulkheadError | undefined {
  return ERRORS_BY_TRAILER.get(trailer);
}

/**
 * better-sqlite3's error class, recognised by name so every path that lets a
 * store failure through (metering, admin writes) reports STORE_FAILED, not a
 * bare INTERNAL, without each one wrapping it.
 */
function isSqliteError(thrown: unknown): boolean {
  return thrown instanceof Error && thrown.name === "SqliteError";
}
