import { describe, expect, it } from "vitest";
import { noteCommit, withWriteAttempt } from "../../src/store/write-attempt.js";

// Which commits a call's attempt made decides whether unary() may retry it
// after STORE_BUSY (a retry must repeat nothing). A call that may write counts
// its own commits; one that should not (ADR 92) runs outside the storage and
// must never see fewer commits than it made, whatever runs beside it.
const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe("write attempts", () => {
  it("counts a writing attempt's own commits across awaits, not a neighbour's", async () => {
    const a = withWriteAttempt(async () => {
      await tick();
      noteCommit();
      await tick();
      noteCommit();
    });
    const b = withWriteAttempt(async () => {
      await tick();
      noteCommit();
    });
    await Promise.all([a.result, b.result]);
    expect(a.commits()).toBe(2);
    expect(b.commits()).toBe(1);
  });

  it("bounds a read-only attempt by every commit made while it ran, so a wrong guess costs a retry and never repeats a write", async () => {
    const read = withWriteAttempt(async () => {
      await tick();
      await tick();
    }, false);
    const neighbour = withWriteAttempt(async () => {
      await tick();
      noteCommit();
    });
    await Promise.all([read.result, neighbour.result]);
    expect(read.commits()).toBe(1);

    // A "read-only" call that did write is seen to have written.
    const wrong = withWriteAttempt(async () => {
      await tick();
      noteCommit();
    }, false);
    await wrong.result;
    expect(wrong.commits()).toBe(1);

    const quiet = withWriteAttempt(async () => tick(), false);
    await quiet.result;
    expect(quiet.commits()).toBe(0);
  });

  it("counts again after every counted attempt settled and the storage was disabled", async () => {
    const first = withWriteAttempt(async () => noteCommit());
    await first.result;
    await tick();
    const failed = withWriteAttempt(async () => {
      await tick();
      noteCommit();
      throw new Error("busy");
    });
    await expect(failed.result).rejects.toThrow("busy");
    expect(failed.commits()).toBe(1);
    const again = withWriteAttempt(async () => {
      await tick();
      noteCommit();
    });
    await again.result;
    expect(again.commits()).toBe(1);
    expect(first.commits()).toBe(1);
  });
});
