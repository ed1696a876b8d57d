// npm run authzen:certification-server: a sidecar loaded with the AuthZEN
// Authorization API 1.0 certification fixture (openid/authzen,
// certification/authorization-api-1_0-scenario.md, section C-1), AuthZEN at
// the root of BULKHEAD_HTTP_ADDR, on a fresh BULKHEAD_DB
// (examples/authzen-fixture-server.mjs says how).
//   BULKHEAD_HTTP_ADDR=127.0.0.1:8080 BULKHEAD_GRPC_ADDR=127.0.0.1:50051 npm run authzen:certification-server
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { serveFixture } from "../authzen-fixture-server.mjs";

await serveFixture(dirname(fileURLToPath(import.meta.url)), { defaultTenant: "ten_certification", describe: "the certification fixture" });
