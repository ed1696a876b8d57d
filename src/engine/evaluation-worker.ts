/**
 * The body of one evaluation worker thread (see evaluation-pool.ts). It loads
 * the policy the main thread already compiled, then answers `{ id, input }`
 * messages, one at a time, with the raw result set or the error. It imports
 * only the protocol, so the compiled file under dist/ serves the TypeScript
 * sources under vitest too.
 *
 * Two channels: the worker's own port for the asynchronous pool, and, for the
 * synchronous lane, a MessagePort plus a shared flag the main thread sleeps
 * on with Atomics.wait while it holds a write transaction.
 */
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import { parentPort, workerData } from "node:worker_threads";
import { READY, type WorkerReply, type WorkerRequest, type WorkerSetup } from "./evaluation-protocol.js";

const setup = workerData as WorkerSetup;
const policy = await loadPolicy(setup.module, setup.memory);
policy.setData(setup.data as object);
const encoder = new TextEncoder();

function answer(request: WorkerRequest): WorkerReply {
  try {
    // The main thread sends JSON text; opa-wasm takes encoded bytes as is.
    const bytes = encoder.encode(request.input);
    const exact = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
    return { id: request.id, resultSet: policy.evaluate(exact.buffer as ArrayBuffer, setup.entrypoint) };
  } catch (thrown) {
    const message = thrown instanceof Error ? thrown.message : typeof thrown === "string" ? thrown : JSON.stringify(thrown);
    return { id: request.id, error: message, memory: isMemoryExhaustion(thrown, message) };
  }
}

/** Growing past the bounded memory is a RangeError from the host; opa's allocator aborts with "out of memory". */
function isMemoryExhaustion(thrown: unknown, message: string): boolean {
  return (thrown instanceof RangeError && /memory/i.test(message)) || /out of memory|malloc/i.test(message);
}

if (setup.syncPort && setup.signal) {
  const { syncPort, signal } = setup;
  syncPort.on("message", (request: WorkerRequest) => {
    syncPort.postMessage(answer(request));
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  });
  Atomics.store(signal, 1, 1);
  Atomics.notify(signal, 1);
} else {
  parentPort!.on("message", (request: WorkerRequest) => parentPort!.postMessage(answer(request)));
  parentPort!.postMessage(READY);
}
