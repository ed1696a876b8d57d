import { AsyncLocalStorage } from "node:async_hooks";

/**
 * Which call a write belongs to, so a call whose write found the database
 * locked can be retried safely: only when none of its writes committed
 * (a retry then repeats nothing). RevisionWriter notes each commit.
 *
 * A call that may write runs its attempt inside an AsyncLocalStorage, which
 * counts its own commits exactly. A call that should not write (a Check
 * without consume, ADR 92) runs outside it and is judged by every commit
 * this process made during its attempt: never fewer than its own, so a
 * wrong guess can only cost a retry, never repeat a write. On Node 20 an
 * AsyncLocalStorage in use puts promise hooks on every promise in the
 * process, so it is enabled only while a counted attempt runs.
 */
const attempts = new AsyncLocalStorage<{ commits: number }>();

/** Every commit this process made (a read-only attempt's bound). */
let committed = 0;
/** Counted attempts not yet settled; the storage is disabled when none is. */
let counting = 0;

export interface WriteAttempt<T> {
  result: T;
  commits: () => number;
}

/**
 * Runs one attempt of a call; `commits()` tells how many writes it committed
 * so far. With `counted` false (a call that should not write), `commits()`
 * is every commit of this process since the attempt started.
 */
export function withWriteAttempt<T>(work: () => Promise<T>, counted = true): WriteAttempt<Promise<T>> {
  if (!counted) {
    const mark = committed;
    return { result: work(), commits: () => committed - mark };
  }
  const attempt = { commits: 0 };
  counting++;
  let result: Promise<T>;
  try {
    result = attempts.run(attempt, work);
  } catch (error) {
    settled();
    throw error;
  }
  result.then(settled, settled);
  return { result, commits: () => attempt.commits };
}

function settled(): void {
  // Nothing reads the storage once no counted attempt is running: its promise hooks go too.
  if (--counting === 0) attempts.disable();
}

export function noteCommit(): void {
  committed++;
  const attempt = attempts.getStore();
  if (attempt) attempt.commits++;
}
