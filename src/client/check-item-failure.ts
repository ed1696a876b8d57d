import { Metadata } from "@grpc/grpc-js";
import type { CheckItemError } from "../gen/bulkhead/v1/decision.js";

/** gRPC INVALID_ARGUMENT: what a single Check with the same malformed input fails with. */
const INVALID_ARGUMENT = 3;

/**
 * A BatchCheck item the server answered with an error instead of a decision
 * (ADR 56), raised for the one coalesced `check` it belongs to. It has the
 * shape of the gRPC error a single Check with the same input fails with
 * (`code`, `details`, and `metadata` with the `bulkhead-error-code` and
 * `bulkhead-field` trailers), so a caller cannot tell a coalesced check from
 * a lone one; `errorCode` and `field` give the same two values directly.
 */
export class CheckItemFailure extends Error {
  override readonly name = "CheckItemFailure";
  readonly code = INVALID_ARGUMENT;
  readonly details: string;
  readonly errorCode: string;
  readonly field: string;
  readonly metadata = new Metadata();

  constructor(error: CheckItemError) {
    super(error.message);
    this.details = error.message;
    this.errorCode = error.code;
    this.field = error.field;
    this.metadata.set("bulkhead-error-code", error.code);
    if (error.field) this.metadata.set("bulkhead-field", error.field);
  }
}
