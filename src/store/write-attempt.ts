import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Which call a write belongs to, so a call whose write found the database
 * locked can be retried safely: only when none of its writes committed
 * (a retry then repeats nothing). RevisionWriter notes each commit.
 */
const attempts = new AsyncLocalStorage<{ commits: number }>();

/** Runs one attempt of a call; `commits()` tells how many writes it committed so far. */
export function withWriteAttempt<T>(work: () => T): { result: T; commits: () => number } {
  const attempt = { commits: 0 };
  return { result: attempts.run(attempt, work), commits: () => attempt.commits };
}

export function noteCommit(): void {
  const attempt = attempts.getStore();
  if (attempt) attempt.commits++;
}
