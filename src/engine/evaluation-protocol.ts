/**
 * What the main thread and an evaluation worker (evaluation-worker.ts) say to
 * each other. Kept apart from the worker so the pool can import it without
 * running the worker's body.
 */
import type { MessagePort } from "node:worker_threads";
import type { WasmModule } from "./wasm-host.js";

export interface WorkerSetup {
  module: WasmModule;
  data: unknown;
  entrypoint: string;
  memory: { initial: number; maximum: number };
  /** Synchronous lane only: replies go here, and `signal[0]` is set to 1 after each one (`signal[1]` once loaded). */
  syncPort?: MessagePort;
  signal?: Int32Array;
}

/** A request: the policy input as JSON text. */
export interface WorkerRequest {
  id: number;
  input: string;
}

/** What the worker sends back for one request; `memory` marks an exhausted Wasm heap. */
export type WorkerReply =
  | { id: number; resultSet: unknown }
  | { id: number; error: string; memory: boolean };

/** Posted once by a pool worker when the policy has loaded. */
export const READY = "ready";
