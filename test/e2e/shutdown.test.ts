import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, type ServiceError } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { CheckRequest, DecisionServiceClient } from "../../src/gen/bulkhead/v1/decision.js";
import { startSidecarProcess } from "../support/processes.js";
import { checkRequest } from "../support/sidecar.js";

// SIGTERM with an idle stream open: before the drain deadline the process
// never exited and /readyz stayed 200 (issue 15, item 4).
describe("shutdown", () => {
  it("goes not-ready at once, ends an open CheckStream, and exits 0 within the drain deadline", async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), "bulkhead-shutdown-")), "b.db");
    const { child, httpPort, grpcAddress } = await startSidecarProcess(dbPath);
    const client = new DecisionServiceClient(grpcAddress, credentials.createInsecure());
    try {
      const stream = client.checkStream();
      const ended = new Promise<string>((resolve) => {
        stream.on("error", (e: ServiceError) => resolve(`error ${e.code}`));
        stream.on("end", () => resolve("end"));
      });
      const first = new Promise((resolve) => stream.once("data", resolve));
      stream.write(CheckRequest.fromPartial({ ...checkRequest("ten_acme", "usr_alice", "projects.read"), principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId: "r1" } }));
      expect(await first).toMatchObject({ allow: true, requestId: "r1" });

      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      const signalledAt = performance.now();
      child.kill("SIGTERM");
      // While it drains, the HTTP side still answers, and says not ready.
      let readiness = 0;
      for (let i = 0; i < 100 && readiness !== 503; i++) {
        readiness = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then((r) => r.status, () => 0);
        if (readiness !== 503) await new Promise((r) => setTimeout(r, 20));
      }
      expect(readiness).toBe(503);
      expect(await exited).toBe(0);
      expect(performance.now() - signalledAt).toBeLessThan(20_000); // the 5 s deadline, with room for a busy machine
      expect(await ended).toMatch(/^error|^end$/);
    } finally {
      client.close();
      child.kill("SIGKILL");
    }
  }, 40_000);
});
