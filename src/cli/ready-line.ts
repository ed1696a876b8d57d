// The one line `bulkhead serve` prints on stderr once a process is serving:
//
//   bulkhead: ready: gRPC on 127.0.0.1:50051, HTTP on 127.0.0.1:8080
//
// stdout is the JSON log (README, Logs), whose lines a level can silence
// (BULKHEAD_LOG_LEVEL=warn) and whose shape is for log collectors. Readiness
// must not depend on either: scripts, tests and benchmarks that start a
// sidecar on port 0 learn its ports from this line, always printed, whatever
// the level, and a person running `npm start` sees it without reading JSON.
// Every reader parses it with `readyAddresses`, so the format lives here only.
// Under `--workers N` each worker prints its own: N lines.

export interface ReadyAddresses {
  /** host:port the gRPC server is bound to (the port it got, when asked for 0). */
  grpcAddress: string;
  httpAddress: string;
}

const PREFIX = "bulkhead: ready: ";

/** The line (without its newline) a serving process prints on stderr. */
export function readyLine(addresses: ReadyAddresses): string {
  return `${PREFIX}gRPC on ${addresses.grpcAddress}, HTTP on ${addresses.httpAddress}`;
}

/**
 * The line, up to its newline only (output arrives in chunks, and a chunk may
 * end inside a port number): group 1 the gRPC address, group 2 the HTTP one.
 * For scripts that match one line; `readyAddresses` finds them all.
 */
export const READY_PATTERN = /^bulkhead: ready: gRPC on (\S+), HTTP on (\S+)\r?\n/m;
const READY = new RegExp(READY_PATTERN.source, "gm");

/** Every complete ready line in `output` (a process's stderr so far, possibly mixed with its stdout), in order. */
export function readyAddresses(output: string): ReadyAddresses[] {
  return [...output.matchAll(READY)].map((m) => ({ grpcAddress: m[1]!, httpAddress: m[2]! }));
}

/** The port of a `host:port` (or `[v6]:port`) address. */
export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}
