import type { ServiceDefinition } from "@grpc/grpc-js";
import { invalidArgument } from "../../errors.js";

/**
 * grpc-js answers INTERNAL when a request cannot be deserialized (a uint64
 * above 2^53 with our number mapping, a truncated message), which tells the
 * caller the sidecar failed when the request was at fault. Decoding failures
 * are therefore carried into the handler as a marked request, and the call
 * wrappers turn them into INVALID_ARGUMENT.
 */
const UNDECODABLE = Symbol("undecodable request");

interface Undecodable {
  [UNDECODABLE]: string;
}

/** The same service with decoders that never throw. */
export function decodingErrorsAsRequests<T extends ServiceDefinition>(service: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error) {
          return { [UNDECODABLE]: error instanceof Error ? error.message : String(error) } satisfies Undecodable;
        }
      },
    };
  }
  return wrapped as T;
}

/** Throws INVALID_ARGUMENT for a request that could not be decoded. */
export function rejectUndecodable(request: unknown): void {
  if (typeof request === "object" && request !== null && UNDECODABLE in request) {
    throw invalidArgument("request", `cannot be decoded: ${(request as Undecodable)[UNDECODABLE]}`);
  }
}
