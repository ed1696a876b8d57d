import { copyFileSync, renameSync, rmSync } from "node:fs";
import { type ServiceError } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { adminClient } from "../support/admin-client.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";

// A deleted database file kept acknowledging writes (all lost at restart); a
// replaced one answered 325 of 325 Checks from state that no longer existed
// (issue 15, item 7). Both are real file operations on the sidecar's file.
let sidecar: TestSidecar | undefined;
afterEach(async () => {
  await sidecar?.close().catch(() => {});
  sidecar = undefined;
});

const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected the call to fail"); }, (e: ServiceError) => e);
const errorCode = (e: ServiceError) => e.metadata.get("bulkhead-error-code")[0];

async function untilLost(s: TestSidecar): Promise<void> {
  for (let i = 0; i < 200 && s.bulkhead.fileGuard.intact; i++) await new Promise((r) => setTimeout(r, 10));
  expect(s.bulkhead.fileGuard.intact).toBe(false);
}

async function expectFailedClosed(s: TestSidecar): Promise<void> {
  const check = await failure(s.check(checkRequest("ten_acme", "usr_alice", "projects.read")));
  expect(errorCode(check)).toBe("STORE_FAILED");
  const admin = adminClient(s.grpcAddress);
  try {
    const write = await failure(admin.call("putMembership", { tenantId: "ten_acme", membership: { actorId: "usr_late", role: "member" }, reason: "onboarding" }));
    expect(errorCode(write)).toBe("STORE_FAILED");
  } finally {
    admin.client.close();
  }
  const ready = await fetch(`http://127.0.0.1:${s.httpPort}/readyz`);
  expect(ready.status).toBe(503);
  const health = (await (await fetch(`http://127.0.0.1:${s.httpPort}/healthz`)).json()) as { status: string; store: { problem: string } };
  expect(health.status).toBe("failed");
  expect(health.store.problem).toContain(s.bulkhead.config.dbPath);
}

describe("the database file changing under the sidecar", () => {
  it("deleted: no write is acknowledged, no decision is made, readiness says why", async () => {
    sidecar = await startSidecar({ runtime: { clock: testClock() } });
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);
    rmSync(sidecar.bulkhead.config.dbPath);
    await untilLost(sidecar);
    await expectFailedClosed(sidecar);
  });

  it("replaced by another file: the same", async () => {
    sidecar = await startSidecar({ runtime: { clock: testClock() } });
    const path = sidecar.bulkhead.config.dbPath;
    copyFileSync(path, `${path}.other`);
    renameSync(`${path}.other`, path);
    await untilLost(sidecar);
    await expectFailedClosed(sidecar);
  });
});

describe("writes failing on storage (a full disk)", () => {
  it("makes the sidecar not ready while writes fail, and ready again once one succeeds", async () => {
    sidecar = await startSidecar({ runtime: { clock: testClock() } });
    const s = sidecar;
    const db = s.bulkhead.db;
    const admin = adminClient(s.grpcAddress);
    try {
      // SQLite's own limit on the file's size gives the same SQLITE_FULL a full disk does.
      const pages = db.pragma("page_count", { simple: true }) as number;
      db.pragma(`max_page_count = ${pages}`);
      let full: ServiceError | undefined;
      for (let i = 0; i < 200 && !full; i++) {
        full = await admin
          .call("putUser", { tenantId: "ten_acme", userId: `usr_fill_${i}`, email: `fill${i}@acme.example`, displayName: "x".repeat(200), reason: "onboarding" })
          .then(() => undefined, (e: ServiceError) => e);
      }
      expect(full && errorCode(full)).toBe("STORE_FAILED");
      expect((await fetch(`http://127.0.0.1:${s.httpPort}/readyz`)).status).toBe(503);
      const health = (await (await fetch(`http://127.0.0.1:${s.httpPort}/healthz`)).json()) as { status: string; store: { writable: boolean; problem: string } };
      expect(health).toMatchObject({ status: "degraded", store: { writable: false } });
      expect(health.store.problem).toContain("SQLITE_FULL");

      db.pragma("max_page_count = 1073741823");
      await admin.call("putUser", { tenantId: "ten_acme", userId: "usr_after", email: "after@acme.example", reason: "onboarding" });
      expect((await fetch(`http://127.0.0.1:${s.httpPort}/readyz`)).status).toBe(200);
    } finally {
      admin.client.close();
    }
  });
});
