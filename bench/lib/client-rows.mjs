// The host-client rows of `npm run bench` (issue 12): bulkhead/client's
// coalescing against unary calls, and the in-process transport, from a load
// process pinned apart from the sidecar. See bench/lib/client-load.mjs.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { pinning } from "./load-tools.mjs";

export const CLIENT_ROWS = {
  coalesced: "bulkhead/client, 100 concurrent isAllowed, coalescing (BatchCheck)",
  unary: "bulkhead/client, 100 concurrent isAllowed, coalesce: false (unary Check)",
  inproc: "bulkhead/client over bulkhead/embedded, one isAllowed at a time",
};

export const CLIENT_COLUMNS = ["row", "decisions/s", "p50 ms", "p99 ms", "client CPU ms/decision", "sidecar CPU ms/decision", "RPCs per 100", "errors"];

/** Runs the load process against a fresh sidecar; returns table rows. */
export async function clientRows({ root, dist, policyDir, requestsFile, bulkheadServer, stopServer, freshDb, loadCore, rounds, bursts }) {
  const { server, address } = await bulkheadServer();
  try {
    const argv = [...pinning(loadCore), process.execPath, join(root, "bench", "lib", "client-load.mjs"),
      dist, address, String(server.child.pid), freshDb(), policyDir, requestsFile, String(rounds), String(bursts)];
    const { stdout } = await promisify(execFile)(argv[0], argv.slice(1), { cwd: root, maxBuffer: 1 << 28 });
    const measured = JSON.parse(stdout);
    return Object.entries(CLIENT_ROWS).map(([id, row]) => {
      const m = measured[id];
      return {
        id: `client-${id}`,
        row,
        "decisions/s": Math.round(m.decisionsPerS),
        "p50 ms": m.p50.toFixed(3),
        "p99 ms": m.p99.toFixed(3),
        "client CPU ms/decision": m.clientCpuMsPerDecision.toFixed(4),
        "sidecar CPU ms/decision": m.serverCpuMsPerDecision === null ? "-" : m.serverCpuMsPerDecision.toFixed(4),
        "RPCs per 100": m.rpcsPer100.toFixed(1),
        errors: m.errors,
        measured: m,
      };
    });
  } finally {
    await stopServer(server);
  }
}
