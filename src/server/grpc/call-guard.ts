import { status, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { BulkheadError } from "../../errors.js";
import { matchesAny } from "../../identity/admin-auth.js";

/**
 * Caller credentials for the sidecar's own APIs: when tokens are configured,
 * every call must carry `authorization: Bearer <token>` matching one of them.
 * With none configured the sidecar only binds loopback (see config.ts).
 */
/** What a handler wrapper asks before running: throws a coded error to refuse the call. */
export interface CallGate {
  verify(metadata: Metadata): void;
}

export class CallerAuth implements CallGate {
  private readonly tokens: Buffer[];

  constructor(tokens: readonly string[]) {
    this.tokens = tokens.map((t) => Buffer.from(t));
  }

  get required(): boolean {
    return this.tokens.length > 0;
  }

  verify(metadata: Metadata): void {
    this.verifyBearer(metadata.get("authorization")[0]);
  }

  /** The same check on a raw `authorization` header value (HTTP surfaces such as OFREP). */
  verifyBearer(header: unknown): void {
    if (!this.required) return;
    const presented = typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7) : null;
    if (presented === null || !matchesAny(this.tokens, Buffer.from(presented))) {
      throw new BulkheadError("CALLER_UNAUTHENTICATED", "missing or unknown caller token");
    }
  }
}

/** The token of an `authorization: Bearer <token>` header, if there is one. */
export function bearerToken(metadata: Metadata): string | null {
  const header = metadata.get("authorization")[0];
  return typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7) : null;
}

/** The deadline of a call as epoch ms, when the client set one. */
export function deadlineOf(call: { getDeadline(): Date | number }): number | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Why a call's signal aborted. One shared reason: grpc-js 1.14 emits
 * "cancelled" after every call it has finished, too, and abort() without a
 * reason builds a DOMException with a stack each time (about 5% of a warm
 * Check's CPU in a profile under ghz). Nothing reads the reason.
 */
const CALL_ENDED = Object.freeze(new Error("the call was cancelled or has ended"));

/** Aborts when the client cancels the call (or its deadline ends it), so work for a caller who left is not done or logged. */
export function cancelSignalOf(call: { readonly cancelled: boolean; once(event: "cancelled", listener: () => void): unknown }): AbortSignal {
  const controller = new AbortController();
  if (call.cancelled) controller.abort(CALL_ENDED);
  else call.once("cancelled", () => controller.abort(CALL_ENDED));
  return controller.signal;
}

export type GrpcErrorLike = Partial<ServiceError> & { code: status };
