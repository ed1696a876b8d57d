import { describe, expect, it } from "vitest";
import { RevisionWaiter } from "../../src/decision/revision-waiter.js";

// Issue 14, review item 6: one shared waiter for every min_revision wait
// (the stream-level attacks are in test/e2e/decision.test.ts).
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
