import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { BulkheadError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";
import { endedCall, type CallWindow } from "./call-window.js";
import type { WasmModule } from "./wasm-host.js";
import { EvaluationChannel, type Reply } from "./evaluation-channel.js";
import { READY, type WorkerSetup } from "./evaluation-protocol.js";

/** How one evaluation ended; `ms` is the time the worker spent on it. */
export type Evaluation =
  | { kind: "result"; resultSet: unknown; ms: number }
  | { kind: "trap"; message: string; ms: number }
  | { kind: "memory"; message: string; ms: number }
  | { kind: "budget"; ms: number };

export interface PoolOptions {
  module: WasmModule;
  data: unknown;
  entrypoint: string;
  memory: { initial: number; maximum: number };
  /** Worker threads for asynchronous evaluations. */
  size: number;
  /** Longest one evaluation may run before its worker is terminated and replaced. */
  budgetMs: number;
}

/** Longest a worker may take to load the policy. */
const STARTUP_MS = 10_000;

/**
 * Longest a write waits for a replaced synchronous-lane worker to be ready
 * (it blocks the thread meanwhile); past it the Check fails closed. A
 * replacement is started the moment its predecessor is terminated and
 * usually loads in tens of milliseconds.
 */
const SYNC_STARTUP_MS = 1_000;

/**
 * A worker's JavaScript heap holds one input and one result at a time; the
 * Wasm heap is bounded apart (64 MiB). A worker that outgrows this dies,
 * and its evaluation fails closed, rather than growing the process.
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 };

/**
 * The compiled worker. Under vitest this module runs from src/*.ts, where
 * there is no .js beside it; the worker imports only the protocol, so
 * the build's copy serves (npm test compiles before it runs vitest).
 */
const WORKER_URL: URL = (() => {
  const beside = new URL("./evaluation-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return pathToFileURL(join(PACKAGE_ROOT, "dist", "src", "engine", "evaluation-worker.js"));
})();

interface Task {
  json: string;
  call: CallWindow | undefined;
  resolve: (evaluation: Evaluation) => void;
  reject: (error: unknown) => void;
  startedAt?: number;
}

interface Slot {
  worker: Worker;
  channel: EvaluationChannel;
  ready: boolean;
  task: Task | null;
}

const closedError = () => new BulkheadError("POLICY_EVALUATION_FAILED", "the policy's evaluation workers were shut down");
const tooLarge = (json: string): Evaluation => ({ kind: "trap", message: `the policy input (${json.length} characters) does not fit the evaluation channel`, ms: 0 });

/**
 * Evaluates one policy in worker threads so that no evaluation can hold the
 * event loop: a worker that runs past the budget is terminated (the only way
 * to stop a Wasm loop) and replaced, and the caller gets `budget`. Each
 * worker has an EvaluationChannel (shared memory, no messages); the pool
 * awaits the reply with Atomics.waitAsync, whose timeout is the budget. Calls wait
 * in one queue; one whose deadline passed or whose caller left while it
 * waited is skipped, never evaluated. One more worker is the synchronous lane
 * for evaluations inside a write transaction, which cannot await.
 */
export class EvaluationPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private readonly lane: SyncLane;
  private closed = false;
  private retiring = false;

  private constructor(private readonly options: PoolOptions) {
    for (let i = 0; i < options.size; i++) this.slots.push(this.spawn());
    this.lane = new SyncLane(options);
  }

  /** Starts the workers; resolves once every one has loaded the policy. */
  static async start(options: PoolOptions): Promise<EvaluationPool> {
    const pool = new EvaluationPool(options);
    try {
      await Promise.all([...pool.slots.map((slot) => readyOf(slot.worker)), pool.lane.ready()]);
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get budgetMs(): number {
    return this.options.budgetMs;
  }

  /** Evaluates JSON-encoded input on the next free worker. */
  evaluate(json: string, call?: CallWindow): Promise<Evaluation> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      this.queue.push({ json, call, resolve, reject });
      this.dispatch();
    });
  }

  /** Evaluates on the synchronous lane: blocks the calling thread for at most the budget. */
  evaluateSync(json: string): Evaluation {
    if (this.closed) throw closedError();
    return this.lane.evaluate(json);
  }

  /** Lets queued and running evaluations finish, then shuts the workers down. */
  retire(): void {
    this.retiring = true;
    this.closeIfIdle();
  }

  /** Shuts the workers down now; anything queued or running fails closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const task of this.queue.splice(0)) task.reject(closedError());
    const exits = this.slots.map((slot) => {
      slot.task?.reject(closedError());
      slot.task = null;
      slot.channel.release();
      return slot.worker.terminate();
    });
    await Promise.all([...exits, this.lane.close()]);
  }

  private spawn(): Slot {
    const channel = EvaluationChannel.create();
    const worker = new Worker(WORKER_URL, { workerData: setupOf(this.options, channel), resourceLimits: WORKER_LIMITS });
    worker.unref();
    const slot: Slot = { worker, channel, ready: false, task: null };
    worker.on("message", (message) => this.onReady(slot, message));
    worker.on("error", (error) => this.onDeath(slot, `evaluation worker failed: ${error.message}`));
    worker.on("exit", (code) => this.onDeath(slot, `evaluation worker exited with code ${code}`));
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.task) continue;
      const task = this.nextLiveTask();
      if (!task) break;
      this.run(slot, task);
    }
    this.closeIfIdle();
  }

  private run(slot: Slot, task: Task): void {
    if (!slot.channel.send(task.json)) {
      task.resolve(tooLarge(task.json));
      return;
    }
    slot.task = task;
    task.startedAt = performance.now();
    void slot.channel.reply(this.options.budgetMs).then((reply) => this.settle(slot, task, reply));
  }

  /** The first queued task whose caller still waits; the others are failed unevaluated. */
  private nextLiveTask(): Task | undefined {
    for (let task = this.queue.shift(); task; task = this.queue.shift()) {
      const ended = endedCall(task.call);
      if (!ended) return task;
      task.reject(ended);
    }
    return undefined;
  }

  private onReady(slot: Slot, message: unknown): void {
    if (message !== READY) return;
    slot.ready = true;
    this.dispatch();
  }

  /** The reply to `task`, or none within the budget; ignored if the task already ended (worker death, close). */
  private settle(slot: Slot, task: Task, reply: Reply | undefined): void {
    if (slot.task !== task) return;
    slot.task = null;
    task.resolve(evaluationOf(reply, performance.now() - task.startedAt!, this.options.budgetMs));
    // Past the budget the worker is still running; a heap grown to its maximum stays that size: start afresh.
    if (!reply || reply.outcome === "memory") this.replace(slot);
    this.dispatch();
  }

  /** A worker died under a task (or while loading): that task fails closed, the worker is replaced. */
  private onDeath(slot: Slot, message: string): void {
    const index = this.slots.indexOf(slot);
    if (this.closed || index < 0) return;
    slot.task?.resolve({ kind: "trap", message, ms: performance.now() - (slot.task.startedAt ?? performance.now()) });
    slot.task = null;
    this.replace(slot);
    this.dispatch();
  }

  private replace(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    slot.task = null;
    slot.channel.release();
    slot.worker.removeAllListeners();
    void slot.worker.terminate();
    this.slots[index] = this.spawn();
  }

  private closeIfIdle(): void {
    if (this.retiring && !this.closed && this.queue.length === 0 && this.slots.every((s) => !s.task)) void this.close();
  }
}

/**
 * One worker the main thread waits for synchronously: it writes the input to
 * the lane's channel and sleeps in Atomics.wait for at most the budget. Used
 * only where the caller holds a write transaction (Check with consume), so
 * the usage the policy saw is the usage that gets charged; the thread is
 * blocked for at most the budget.
 */
class SyncLane {
  private worker!: Worker;
  private channel!: EvaluationChannel;

  constructor(private readonly options: PoolOptions) {
    this.spawn();
  }

  /** Resolves once the lane's worker has loaded the policy. */
  async ready(): Promise<void> {
    if (!(await this.channel.loaded(STARTUP_MS))) {
      throw new Error(`the policy did not load in an evaluation worker within ${STARTUP_MS} ms`);
    }
  }

  evaluate(json: string): Evaluation {
    if (!this.channel.loadedSync(SYNC_STARTUP_MS)) {
      throw new BulkheadError("POLICY_EVALUATION_FAILED", "the synchronous evaluation worker did not start");
    }
    const startedAt = performance.now();
    if (!this.channel.send(json)) return tooLarge(json);
    const reply = this.channel.replySync(this.options.budgetMs);
    if (!reply || reply.outcome === "memory") this.respawn();
    return evaluationOf(reply, performance.now() - startedAt, this.options.budgetMs);
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }

  private spawn(): void {
    this.channel = EvaluationChannel.create();
    this.worker = new Worker(WORKER_URL, { workerData: setupOf(this.options, this.channel), resourceLimits: WORKER_LIMITS });
    this.worker.unref();
    // A lane worker that dies is noticed by the next evaluation's timeout.
    this.worker.on("error", () => {});
  }

  private respawn(): void {
    void this.worker.terminate();
    this.spawn();
  }
}

/**
 * A channel reply as an Evaluation. None (the wait ran out) is `budget`, and
 * so is one the worker took longer than the budget to compute: it came in
 * only because this thread looked late, and a late answer is not an answer.
 */
function evaluationOf(reply: Reply | undefined, ms: number, budgetMs: number): Evaluation {
  if (!reply || reply.ms > budgetMs) return { kind: "budget", ms };
  if (reply.outcome !== "result") return { kind: reply.outcome, message: reply.text, ms };
  try {
    return { kind: "result", resultSet: JSON.parse(reply.text), ms };
  } catch (error) {
    return { kind: "trap", message: `the policy's result is not JSON: ${(error as Error).message}`, ms };
  }
}

function setupOf(options: PoolOptions, channel: EvaluationChannel): WorkerSetup {
  return { module: options.module, data: options.data, entrypoint: options.entrypoint, memory: options.memory, channel: channel.buffer };
}

function readyOf(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the policy did not load in an evaluation worker within ${STARTUP_MS} ms`)), STARTUP_MS);
    worker.once("message", (message) => {
      clearTimeout(timer);
      if (message === READY) resolve();
    });
    worker.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`the policy does not load in an evaluation worker: ${error.message}`));
    });
  });
}
