import { Metadata, type ServerWritableStream } from "@grpc/grpc-js";
import type { CallGate } from "./call-guard.js";
import { toGrpcError } from "./grpc-errors.js";
import { rejectUndecodable } from "./request-decoding.js";

/**
 * A server stream fed by polling a log table (outbox, changes) from a cursor:
 * everything after the cursor first, then new rows as they commit, until the
 * client cancels. Polling, rather than an in-process signal, also sees rows
 * other processes sharing the database wrote.
 */
export function pollStream<Req, Row, Res>(
  call: ServerWritableStream<Req, Res>,
  options: {
    auth: CallGate;
    /** Validates the request before anything is sent; throws a coded error. */
    validate: () => void;
    start: number;
    next: (cursor: number) => Row[];
    cursorOf: (row: Row) => number;
    toMessage: (row: Row) => Res;
    pollMs?: number;
  },
): void {
  let timer: NodeJS.Timeout | undefined;
  const fail = (error: unknown) => call.emit("error", Object.assign(new Error(), toGrpcError(error)));
  try {
    options.auth.verify(call.metadata);
    rejectUndecodable(call.request);
    options.validate();
  } catch (error) {
    fail(error);
    return;
  }
  // Headers now, not with the first row: a subscriber learns the stream was
  // accepted (credentials and request good) even while nothing changes, so a
  // client cache can tell a live subscription from one still connecting.
  call.sendMetadata(new Metadata());
  let cursor = options.start;
  const pump = () => {
    try {
      // Credentials are checked on every poll, not only at the start: a
      // revoked token or disabled staff member stops receiving at once.
      options.auth.verify(call.metadata);
      for (const row of options.next(cursor)) {
        call.write(options.toMessage(row));
        cursor = options.cursorOf(row);
      }
      timer = setTimeout(pump, options.pollMs ?? 100);
    } catch (error) {
      fail(error);
    }
  };
  call.on("cancelled", () => clearTimeout(timer));
  call.on("close", () => clearTimeout(timer));
  pump();
}
