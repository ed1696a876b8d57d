/**
 * The catalog of stable error codes. A deny is an answer, an error is not:
 * every failed call carries one of these codes, and every transport maps the
 * code's category to its own status in exactly one table
 * (src/server/grpc/grpc-errors.ts, src/server/http/http-errors.ts).
 */
export type ErrorCategory =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "unauthenticated"
  | "permission_denied"
  | "unavailable"
  | "deadline_exceeded"
  | "internal";

export const ERROR_CATALOG = {
  REQUEST_INVALID_ARGUMENT: { category: "invalid_argument", summary: "a request field is missing or malformed" },
  CONTEXT_NOT_FOUND: { category: "not_found", summary: "no such principal in this tenant" },
  TENANT_NOT_FOUND: { category: "not_found", summary: "no such tenant" },
  RESERVATION_NOT_FOUND: { category: "not_found", summary: "no such reservation in this tenant" },
  RESERVATION_CLOSED: { category: "failed_precondition", summary: "the reservation was already committed, released or expired" },
  IDEMPOTENCY_KEY_REUSED: { category: "already_exists", summary: "the idempotency key was used for a different request" },
  STORE_REVISION_NOT_REACHED: { category: "failed_precondition", summary: "min_revision is ahead of the store" },
  CALLER_UNAUTHENTICATED: { category: "unauthenticated", summary: "missing or unknown caller token" },
  ADMIN_FORBIDDEN: { category: "permission_denied", summary: "the caller's staff role does not allow this admin action" },
  APPROVAL_REQUIRED: { category: "failed_precondition", summary: "a global (all_tenants) action needs a second staff member's approval" },
  ADMIN_NOT_FOUND: { category: "not_found", summary: "the object an admin call names does not exist" },
  ADMIN_CONFLICT: { category: "failed_precondition", summary: "the admin action conflicts with the current state" },
  CONSOLE_CSRF: { category: "permission_denied", summary: "a console form was posted without its session's CSRF token" },
  POLICY_NOT_LOADED: { category: "unavailable", summary: "no policy bundle has loaded yet" },
  POLICY_EVALUATION_FAILED: { category: "internal", summary: "the policy trapped or returned garbage" },
  STORE_FAILED: { category: "internal", summary: "the SQLite store failed" },
  STORE_BUSY: { category: "unavailable", summary: "another process holds the database's write lock; nothing was written, retry" },
  CALL_EXPIRED: { category: "deadline_exceeded", summary: "the call's deadline passed or it was cancelled before it was answered; nothing was decided, charged or logged" },
  REPLICATION_UNAVAILABLE: { category: "unavailable", summary: "replicated mode cannot reach the change log, or this sidecar stopped applying it" },
  INTERNAL: { category: "internal", summary: "unexpected internal failure" },
} as const satisfies Record<string, { category: ErrorCategory; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/**
 * A mistake of the person at the command line (a bad flag, a bad config
 * value, a malformed suite file): the CLI prints its message, no stack, and
 * exits 2.
 */
export class UsageError extends Error {
  override readonly name: string = "UsageError";
}

export class BulkheadError extends Error {
  override readonly name = "BulkheadError";
  readonly category: ErrorCategory;

  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field at fault, as a dotted path (`principal.tenant_id`). */
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.category = ERROR_CATALOG[code].category;
  }
}

export function invalidArgument(field: string, problem: string): BulkheadError {
  return new BulkheadError("REQUEST_INVALID_ARGUMENT", `${field}: ${problem}`, field);
}

/**
 * Wraps anything thrown by third-party code (opa-wasm throws plain strings,
 * better-sqlite3 throws SqliteError) into a coded error at the point it enters.
 */
export function wrapError(code: ErrorCode, what: string, cause: unknown): BulkheadError {
  if (cause instanceof BulkheadError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  // A locked database is not a broken one: the caller may retry.
  if (code === "STORE_FAILED" && isSqliteBusy(cause)) {
    return new BulkheadError("STORE_BUSY", `the database is locked by another process; nothing was written: ${detail}`, undefined, { cause });
  }
  return new BulkheadError(code, `${what}: ${detail}`, undefined, { cause });
}

/** SQLITE_BUSY and its extended codes: another connection holds a lock this one needs. */
export function isSqliteBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}
