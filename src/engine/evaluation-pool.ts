import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import { BulkheadError } from "../errors.js";
import { PACKAGE_ROOT } from "../paths.js";
import { endedCall, type CallWindow } from "./call-window.js";
import { waitAsync, type WasmModule } from "./wasm-host.js";
import { READY, type WorkerReply, type WorkerSetup } from "./evaluation-protocol.js";

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
  id?: number;
  startedAt?: number;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task: Task | null;
  timer: NodeJS.Timeout | undefined;
}

const closedError = () => new BulkheadError("POLICY_EVALUATION_FAILED", "the policy's evaluation workers were shut down");

/**
 * Evaluates one policy in worker threads so that no evaluation can hold the
 * event loop: a worker that runs past the budget is terminated (the only way
 * to stop a Wasm loop) and replaced, and the caller gets `budget`. Calls wait
 * in one queue; one whose deadline passed or whose caller left while it
 * waited is skipped, never evaluated. One more worker is the synchronous lane
 * for evaluations inside a write transaction, which cannot await.
 */
export class EvaluationPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private readonly lane: SyncLane;
  private nextId = 1;
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
      clearTimeout(slot.timer);
      slot.task?.reject(closedError());
      slot.task = null;
      return slot.worker.terminate();
    });
    await Promise.all([...exits, this.lane.close()]);
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_URL, { workerData: setupOf(this.options), resourceLimits: WORKER_LIMITS });
    worker.unref();
    const slot: Slot = { worker, ready: false, task: null, timer: undefined };
    worker.on("message", (reply: WorkerReply | typeof READY) => this.onReply(slot, reply));
    worker.on("error", (error) => this.onDeath(slot, `evaluation worker failed: ${error.message}`));
    worker.on("exit", (code) => this.onDeath(slot, `evaluation worker exited with code ${code}`));
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.task) continue;
      const task = this.nextLiveTask();
      if (!task) break;
      slot.task = task;
      task.id = this.nextId++;
      task.startedAt = performance.now();
      slot.timer = setTimeout(() => this.overBudget(slot), this.options.budgetMs);
      slot.worker.postMessage({ id: task.id, input: task.json });
    }
    this.closeIfIdle();
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

  private onReply(slot: Slot, reply: WorkerReply | typeof READY): void {
    if (reply === READY) {
      slot.ready = true;
      this.dispatch();
      return;
    }
    const task = slot.task;
    if (!task || task.id !== reply.id) return;
    clearTimeout(slot.timer);
    slot.task = null;
    const ms = performance.now() - task.startedAt!;
    if (!("error" in reply)) task.resolve({ kind: "result", resultSet: reply.resultSet, ms });
    else task.resolve({ kind: reply.memory ? "memory" : "trap", message: reply.error, ms });
    // A heap grown to its maximum stays that size: start that worker afresh.
    if ("error" in reply && reply.memory) this.replace(slot);
    this.dispatch();
  }

  private overBudget(slot: Slot): void {
    const task = slot.task;
    if (!task) return;
    slot.task = null;
    task.resolve({ kind: "budget", ms: performance.now() - task.startedAt! });
    this.replace(slot);
    this.dispatch();
  }

  /** A worker died under a task (or while loading): that task fails closed, the worker is replaced. */
  private onDeath(slot: Slot, message: string): void {
    const index = this.slots.indexOf(slot);
    if (this.closed || index < 0) return;
    clearTimeout(slot.timer);
    slot.task?.resolve({ kind: "trap", message, ms: performance.now() - (slot.task.startedAt ?? performance.now()) });
    slot.task = null;
    this.replace(slot);
    this.dispatch();
  }

  private replace(slot: Slot): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    clearTimeout(slot.timer);
    slot.worker.removeAllListeners();
    void slot.worker.terminate();
    this.slots[index] = this.spawn();
  }

  private closeIfIdle(): void {
    if (this.retiring && !this.closed && this.queue.length === 0 && this.slots.every((s) => !s.task)) void this.close();
  }
}

/**
 * One worker the main thread waits for synchronously: it posts the request,
 * sleeps on a shared flag with Atomics.wait for at most the budget, and takes
 * the reply with receiveMessageOnPort. Used only where the caller holds a
 * write transaction (Check with consume), so the usage the policy saw is the
 * usage that gets charged; the thread is blocked for at most the budget.
 */
class SyncLane {
  private worker!: Worker;
  private port!: MessagePort;
  private signal!: Int32Array;
  private nextId = 1;

  constructor(private readonly options: PoolOptions) {
    this.spawn();
  }

  /** Resolves once the lane's worker has loaded the policy. */
  async ready(): Promise<void> {
    if ((await waitAsync(this.signal, 1, 0, STARTUP_MS)) === "timed-out") {
      throw new Error(`the policy did not load in an evaluation worker within ${STARTUP_MS} ms`);
    }
  }

  evaluate(json: string): Evaluation {
    if (Atomics.load(this.signal, 1) !== 1 && Atomics.wait(this.signal, 1, 0, SYNC_STARTUP_MS) === "timed-out") {
      throw new BulkheadError("POLICY_EVALUATION_FAILED", "the synchronous evaluation worker did not start");
    }
    const id = this.nextId++;
    const startedAt = performance.now();
    Atomics.store(this.signal, 0, 0);
    this.port.postMessage({ id, input: json });
    const woke = Atomics.wait(this.signal, 0, 0, this.options.budgetMs);
    const ms = performance.now() - startedAt;
    const reply = woke === "timed-out" ? undefined : (receiveMessageOnPort(this.port)?.message as WorkerReply | undefined);
    if (!reply || reply.id !== id) {
      this.respawn();
      return { kind: "budget", ms };
    }
    if (!("error" in reply)) return { kind: "result", resultSet: reply.resultSet, ms };
    if (reply.memory) this.respawn();
    return { kind: reply.memory ? "memory" : "trap", message: reply.error, ms };
  }

  async close(): Promise<void> {
    this.port.close();
    await this.worker.terminate();
  }

  private spawn(): void {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.signal = new Int32Array(new SharedArrayBuffer(8));
    const setup: WorkerSetup = { ...setupOf(this.options), syncPort: port2, signal: this.signal };
    this.worker = new Worker(WORKER_URL, { workerData: setup, transferList: [port2], resourceLimits: WORKER_LIMITS });
    this.worker.unref();
    // A lane worker that dies is noticed by the next evaluation's timeout.
    this.worker.on("error", () => {});
  }

  private respawn(): void {
    this.port.close();
    void this.worker.terminate();
    this.spawn();
  }
}

function setupOf(options: PoolOptions): WorkerSetup {
  return { module: options.module, data: options.data, entrypoint: options.entrypoint, memory: options.memory };
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
