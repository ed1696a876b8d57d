// Row B0, the floor: a grpc-js server on the same proto whose Check answers a
// constant without looking at the request. Whatever it costs is the price of
// grpc-js + protobuf + HTTP/2 on this machine; Bulkhead's rows are ratios to it.
//
//   node bench/lib/null-server.mjs <dist/src> <host:port>
import { join } from "node:path";

const [dist, address] = process.argv.slice(2);
const grpc = await import("@grpc/grpc-js");
const { DecisionServiceService } = await import(join(dist, "gen", "bulkhead", "v1", "decision.js"));

const answer = (request) => ({
  allow: true, reasons: [], decisionId: "01NULL", policyRevision: "null", storeRevision: 1,
  evaluatedAt: new Date(), requestId: request.principal?.requestId ?? "",
});
const server = new grpc.Server();
server.addService(DecisionServiceService, {
  check: (call, callback) => callback(null, answer(call.request)),
  batchCheck: (call, callback) => callback(null, { results: call.request.checks.map(answer) }),
  checkStream: (call) => {
    call.on("data", (request) => call.write(answer(request)));
    call.on("end", () => call.end());
  },
  resolveContext: (_call, callback) => callback({ code: grpc.status.UNIMPLEMENTED }),
});
server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.error(`null server: gRPC listening on port ${port}`);
});
process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
