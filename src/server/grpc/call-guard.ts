import { status, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { timingSafeEqual } from "node:crypto";
import { BulkheadError } from "../../errors.js";

/**
 * Caller credentials for the sidecar's own APIs: when tokens are configured,
 * every call must carry `authorization: Bearer <token>` matching one of them.
 * With none configured the sidecar only binds loopback (see config.ts).
 */
export class CallerAuth {
  private readonly tokens: Buffer[];

  constructor(tokens: readonly string[]) {
    this.tokens = tokens.map((t) => Buffer.from(t));
  }

  get required(): boolean {
    return this.tokens.length > 0;
  }

  verify(metadata: Metadata): void {
    if (!this.required) return;
    const header = metadata.get("authorization")[0];
    const presented = typeof header === "string" && header.startsWith("Bearer ") ? Buffer.from(header.slice(7)) : null;
    // Compare against every token in constant time so timing says nothing.
    const ok = presented !== null && this.tokens.reduce((hit, t) => safeEqual(t, presented) || hit, false);
    if (!ok) throw new BulkheadError("CALLER_UNAUTHENTICATED", "missing or unknown caller token");
  }
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The deadline of a call as epoch ms, when the client set one. */
export function deadlineOf(call: { getDeadline(): Date | number }): number | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

export type GrpcErrorLike = Partial<ServiceError> & { code: status };
