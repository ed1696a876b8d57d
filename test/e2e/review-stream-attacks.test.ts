import { status, type ClientDuplexStream } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckRequest, type CheckResponse } from "../../src/gen/bulkhead/v1/decision.js";
import { RevisionWaiter } from "../../src/decision/revision-waiter.js";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";

// Issue 14, review items 5 and 6 (the rest is in decision.test.ts): answers
// paired by request_id when a waiting deny overtakes, and the shared waiter.
let sidecar: TestSidecar;
beforeAll(async () => {
  sidecar = await startSidecar();
});
afterAll(() => sidecar.close());

type Stream = ClientDuplexStream<CheckRequest, CheckResponse>;

function outcomeOf(stream: Stream): Promise<{ code: number; field?: string; errorCode?: string; answers: CheckResponse[] }> {
  const answers: CheckResponse[] = [];
  return new Promise((resolve) => {
    stream.on("data", (r: CheckResponse) => answers.push(r));
    stream.on("error", (e: { code: number; metadata: { get(k: string): unknown[] } }) =>
      resolve({
        code: e.code,
        field: e.metadata.get("bulkhead-field")[0] as string | undefined,
        errorCode: e.metadata.get("bulkhead-error-code")[0] as string | undefined,
        answers,
      }),
    );
    stream.on("end", () => resolve({ code: status.OK, answers }));
  });
}

function read(requestId: string, extra: Partial<CheckRequest> = {}): CheckRequest {
  return CheckRequest.fromPartial({
    ...checkRequest("ten_acme", "usr_alice", "projects.read", "ten_acme"),
    principal: { tenantId: "ten_acme", actorId: "usr_alice", requestId },
    ...extra,
  });
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}

describe("CheckStream request_id (item 5)", () => {
  it("still pairs out-of-order answers by request_id: a waiting deny is answered after a later allow", async () => {
    const stream = sidecar.client.checkStream();
    const outcome = outcomeOf(stream);
    const next = sidecar.bulkhead.tracker.revision + 1;
    stream.write(read("waits-deny", { resource: { type: "project", id: "p", tenantId: "ten_globex", ownerId: "", attributes: {} }, minRevision: next }));
    stream.write(read("later-allow"));
    await until(() => sidecar.bulkhead.decider.revisions.waiting === 1);
    sidecar.seed({ users: [{ id: "usr_stream_wake", email: "w@example.com", displayName: "W" }] });
    stream.end();
    const result = await outcome;
    expect(result.code).toBe(status.OK);
    expect(result.answers.map((a) => [a.requestId, a.allow])).toEqual([
      ["later-allow", true],
      ["waits-deny", false],
    ]);
  });
});

describe("RevisionWaiter", () => {
  it("reads the revision once per tick however many requests wait", async () => {
    let reads = 0;
    let revision = 1;
    const waiter = new RevisionWaiter(() => (reads++, revision), 5);
    const waits = Array.from({ length: 500 }, () => waiter.wait(2, 10_000));
    const readsAfterStart = reads;
    await new Promise((r) => setTimeout(r, 60));
    revision = 2;
    await expect(Promise.all(waits)).resolves.toHaveLength(500);
    // 500 waiters polling on their own would read ~500 times per tick.
    expect(reads - readsAfterStart).toBeLessThan(40);
    expect(waiter.waiting).toBe(0);
  });

  it("rejects at the budget with STORE_REVISION_NOT_REACHED, never resolves below minRevision", async () => {
    const waiter = new RevisionWaiter(() => 1, 2);
    await expect(waiter.wait(5, 20)).rejects.toMatchObject({ code: "STORE_REVISION_NOT_REACHED" });
  });

  it("rejects with the store's error when reading the revision fails", async () => {
    let fail = false;
    const waiter = new RevisionWaiter(() => {
      if (fail) throw new Error("disk gone");
      return 1;
    }, 2);
    const wait = waiter.wait(5, 10_000);
    fail = true;
    await expect(wait).rejects.toThrow("disk gone");
  });
});
