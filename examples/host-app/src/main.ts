import { randomBytes } from "node:crypto";
import { BulkheadClient } from "bulkhead/client";
import { createHostApp } from "./app.js";

// Starts the example host against a running sidecar. Configuration by
// environment (start.mjs sets all of it for the demo):
//   BULKHEAD_ADDR        sidecar gRPC address (default 127.0.0.1:50051)
//   BULKHEAD_SYNC_TOKEN  a token with changes.watch and membership writes: turns on the decision cache
//   HOST_APP_PORT        HTTP port (default 3000)
//   HOST_APP_DB          the host's SQLite file (default ./host-app.db)
//   HOST_APP_FILES       local object storage directory (default ./host-app-files)
//   HOST_APP_URL_SECRET  download-link HMAC secret, at least 32 bytes (default: random per start)
const env = process.env;
const port = Number(env.HOST_APP_PORT ?? 3000);
const publicUrl = `http://127.0.0.1:${port}`;
const syncToken = env.BULKHEAD_SYNC_TOKEN;
const bulkhead = new BulkheadClient({
  address: env.BULKHEAD_ADDR ?? "127.0.0.1:50051",
  ...(syncToken ? { adminToken: syncToken, operator: "host-app", cache: { maxAgeMs: 1000 } } : {}),
});
const host = createHostApp({
  bulkhead,
  dbPath: env.HOST_APP_DB ?? "host-app.db",
  filesDir: env.HOST_APP_FILES ?? "host-app-files",
  publicUrl,
  urlKeys: [{ id: "k1", secret: env.HOST_APP_URL_SECRET ?? randomBytes(32).toString("hex") }],
  currentKeyId: "k1",
});
const server = host.app.listen(port, "127.0.0.1", () => console.error(`host-app: listening on ${publicUrl}`));
// The export worker: one pass a second over the queue.
const worker = setInterval(() => void host.runQueuedJobs(), 1000);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    clearInterval(worker);
    server.close(() => void bulkhead.close().then(() => host.close()));
  });
}
