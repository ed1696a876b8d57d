// npm run authzen:todo-server: a sidecar loaded with the AuthZEN todo
// interop scenario (openid/authzen, docs/scenarios/todo and
// interop/authzen-todo-backend), AuthZEN at the root of BULKHEAD_HTTP_ADDR,
// on a fresh BULKHEAD_DB (examples/authzen-fixture-server.mjs says how).
// decisions-1.0-implementers-draft.json is the scenario's own decision list
// (test/e2e/authzen-todo.test.ts replays it).
//   BULKHEAD_HTTP_ADDR=127.0.0.1:8080 BULKHEAD_GRPC_ADDR=127.0.0.1:50051 npm run authzen:todo-server
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { serveFixture } from "../authzen-fixture-server.mjs";

await serveFixture(dirname(fileURLToPath(import.meta.url)), { defaultTenant: "ten_todo", describe: "the todo interop fixture" });
