import { ManualClock } from "../../src/clock.js";

// One notion of time for the whole suite. Every test that reasons about
// business time (usage windows, expiries, Stripe event times, impersonation
// windows) runs on a ManualClock that starts at TEST_START, and every process
// a test starts takes its time from that clock (consume-worker.mjs gets it on
// the command line), never from the wall clock. Tests that must use the wall
// clock (a child process that cannot be given a clock) use it everywhere in
// that test and assert nothing that a month end could change.
//
// The suite runs twice in CI: once on the real clock and once under
// libfaketime with the wall clock moved across a month and year end
// (scripts/test-shifted-clock.sh), so a test that mixes the two fails there.

/** The instant every test clock starts at: a Thursday, mid-month, UTC noon. */
export const TEST_START = Date.UTC(2026, 10, 26, 12);

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A clock for one test file, starting at TEST_START (or `at`). */
export function testClock(at: number = TEST_START): ManualClock {
  return new ManualClock(at);
}

/** Epoch seconds, the unit Stripe uses for event and period times. */
export const epochSeconds = (ms: number): number => Math.floor(ms / 1000);

/** The first instant of the calendar month after `ms`, in UTC (usage windows reset there). */
export function nextMonthStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** A Stripe period end later than any clock a test runs on, real or shifted. */
export const FAR_FUTURE_SECONDS = epochSeconds(Date.UTC(2100, 0, 1));
