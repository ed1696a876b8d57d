import type { CheckRequest, CheckResponse } from "../gen/bulkhead/v1/decision.js";
import type { Transport, TransportCallOptions } from "./transport.js";
import { CheckItemFailure } from "./check-item-failure.js";

/**
 * The server's BatchCheck maximum (LIMITS.batchSize in
 * src/decision/check-input.ts). Kept as a copy, not an import, because the
 * client must not load server code; test/e2e/client.test.ts pins the two equal.
 */
export const SERVER_BATCH_MAX = 1000;

interface Pending {
  request: CheckRequest;
  options: TransportCallOptions;
  resolve(response: CheckResponse): void;
  reject(error: unknown): void;
}

/**
 * Collects the checks made in one tick and sends them as BatchCheck calls of
 * at most `maxBatch` items. A check that consumes, or carries an idempotency
 * key, goes alone: the server runs a consuming batch as one all-or-nothing
 * write, which a single Check would not. A malformed item comes back with
 * its own error (ADR 56) and only its caller is rejected; a batch an older
 * server refuses as a whole for one malformed item is retried item by item.
 * Either way every caller gets the answer or error its own Check would give.
 */
export class CheckCoalescer {
  private queue: Pending[] = [];
  private scheduled = false;

  /** `maxBatch` defaults to the server's limit; a smaller one only means more calls. */
  constructor(private readonly transport: Transport, private readonly maxBatch = SERVER_BATCH_MAX) {}

  /** Answers one check, possibly inside a batch with others from the same tick. */
  check(request: CheckRequest, options: TransportCallOptions): Promise<CheckResponse> {
    if (request.consume > 0 || request.idempotencyKey !== "") return this.transport.check(request, options);
    return new Promise((resolve, reject) => {
      this.queue.push({ request, options, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the current tick's microtasks: every check started in this tick is queued by then.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const queue = this.queue;
    this.queue = [];
    this.scheduled = false;
    for (let i = 0; i < queue.length; i += this.maxBatch) void this.send(queue.slice(i, i + this.maxBatch));
  }

  private async send(batch: Pending[]): Promise<void> {
    if (batch.length === 1) return this.sendAlone(batch[0]!);
    // The batch runs until the earliest deadline among its callers: none waits past its own.
    const deadline = Math.min(...batch.map((p) => p.options.deadline));
    try {
      const { results } = await this.transport.batchCheck({ checks: batch.map((p) => p.request) }, { deadline });
      if (results.length !== batch.length) throw new Error(`BatchCheck answered ${results.length} results for ${batch.length} checks`);
      batch.forEach((p, i) => {
        const result = results[i]!;
        if (result.error) p.reject(new CheckItemFailure(result.error));
        else p.resolve(result);
      });
    } catch (error) {
      if (isInvalidArgument(error)) {
        for (const p of batch) void this.sendAlone(p);
        return;
      }
      for (const p of batch) p.reject(error);
    }
  }

  private sendAlone(p: Pending): Promise<void> {
    return this.transport.check(p.request, p.options).then(p.resolve, p.reject);
  }
}

/** gRPC INVALID_ARGUMENT (3); the in-process transport reports errors with the same codes. */
function isInvalidArgument(error: unknown): boolean {
  const e = error as { code?: unknown };
  return e?.code === 3;
}
