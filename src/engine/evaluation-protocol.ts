/**
 * What the main thread gives an evaluation worker (evaluation-worker.ts).
 * Kept apart from the worker so the pool can import it without running the
 * worker's body. Requests and replies go through the shared buffer of an
 * EvaluationChannel (evaluation-channel.ts), not through messages.
 */
import type { WasmModule } from "./wasm-host.js";

export interface WorkerSetup {
  module: WasmModule;
  data: unknown;
  entrypoint: string;
  memory: { initial: number; maximum: number };
  /** The EvaluationChannel's buffer. */
  channel: SharedArrayBuffer;
}

/** Posted once by a worker when the policy has loaded (the pool's start also learns a load error this way). */
export const READY = "ready";
