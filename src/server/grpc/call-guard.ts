import { status, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { BulkheadError } from "../../errors.js";
import { matchesAny } from "../../identity/admin-auth.js";
import type { CancelSignal } from "../../engine/call-window.js";

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

/** The part of a grpc-js server call that tells whether its client left. */
interface CancellableCall {
  readonly cancelled: boolean;
  once(event: "cancelled", listener: () => void): unknown;
  removeListener(event: "cancelled", listener: () => void): unknown;
}

/**
 * Aborted once the client cancels the call (or its deadline ends it), so
 * work for a caller who left is not done or logged. Read off the call
 * itself (grpc-js sets `cancelled` and emits "cancelled"): no
 * AbortController, AbortSignal and listener per call. grpc-js 1.14 emits
 * "cancelled" after every call it has finished, too, and aborting a
 * controller then was about 5% of a warm Check's CPU (ADR 92); a listener
 * is added only by a wait that needs one (a min_revision wait).
 */
export function cancelSignalOf(call: CancellableCall): CancelSignal {
  return new CallCancelSignal(call);
}

class CallCancelSignal implements CancelSignal {
  constructor(private readonly call: CancellableCall) {}

  get aborted(): boolean {
    return this.call.cancelled;
  }

  // Like an AbortSignal's: a listener added after the cancel is not called.
  addEventListener(_type: "abort", listener: () => void): void {
    if (!this.call.cancelled) this.call.once("cancelled", listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    this.call.removeListener("cancelled", listener);
  }
}

export type GrpcErrorLike = Partial<ServiceError> & { code: status };
