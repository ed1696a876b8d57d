/**
 * The body of one evaluation worker thread (see evaluation-pool.ts). It loads
 * the policy the main thread already compiled, then loops forever: block in
 * Atomics.wait for the next input on its EvaluationChannel, evaluate, write
 * the result's JSON back. It never returns to its event loop; the main thread
 * stops a runaway evaluation with worker.terminate(), which also interrupts
 * the wait. It imports only the protocol and the channel, so the compiled
 * file under dist/ serves the TypeScript sources under vitest too.
 */
import { loadPolicy, type LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { parentPort, workerData } from "node:worker_threads";
import { EvaluationChannel } from "./evaluation-channel.js";
import { READY, type WorkerSetup } from "./evaluation-protocol.js";

/** The parts of opa-wasm's LoadedPolicy its own evaluate uses (ABI 1.2 fast path, opa-wasm src/opa.js). */
interface PolicyInternals {
  minorVersion: number;
  mem: { buffer: ArrayBuffer; grow(pages: number): void };
  wasmInstance: { exports: { opa_eval(reserved: 0, entrypoint: number, data: number, input: number, length: number, heap: number, format: 0): number } };
  dataAddr: number;
  dataHeapPtr: number;
  entrypoints: Record<string, number>;
}

const WASM_PAGE = 64 * 1024;

const setup = workerData as WorkerSetup;
const loaded: LoadedPolicy = await loadPolicy(setup.module, setup.memory);
loaded.setData(setup.data as object);
const policy = loaded as unknown as PolicyInternals;
// Fail at load (the pool's smoke cases), not on traffic, if the module or opa-wasm is not what evaluateBytes expects.
if (policy.minorVersion < 2) throw new Error("policy.wasm uses OPA Wasm ABI 1.0/1.1; the evaluation worker needs 1.2");
if (typeof policy.dataHeapPtr !== "number" || typeof policy.wasmInstance?.exports?.opa_eval !== "function") {
  throw new Error("this opa-wasm's LoadedPolicy lacks the fields the evaluation worker reads (dataHeapPtr, wasmInstance.exports.opa_eval)");
}
const entrypoint = policy.entrypoints[setup.entrypoint]!;
const channel = new EvaluationChannel(setup.channel);

/**
 * What `LoadedPolicy.evaluate` does for an ArrayBuffer input, minus the
 * copies around it: the input bytes go straight from the channel into the
 * Wasm heap, and the result's JSON bytes are returned as a view of that heap,
 * never parsed here (the main thread parses them once).
 */
function evaluateBytes(input: Uint8Array): Uint8Array {
  const address = policy.dataHeapPtr;
  const end = address + input.byteLength;
  const short = end - policy.mem.buffer.byteLength;
  if (short > 0) policy.mem.grow(Math.ceil(short / WASM_PAGE));
  new Uint8Array(policy.mem.buffer).set(input, address);
  const result = policy.wasmInstance.exports.opa_eval(0, entrypoint, policy.dataAddr, address, input.byteLength, end, 0);
  const heap = new Uint8Array(policy.mem.buffer);
  return heap.subarray(result, heap.indexOf(0, result));
}

/** Growing past the bounded memory is a RangeError from the host; opa's allocator aborts with "out of memory". */
function isMemoryExhaustion(thrown: unknown, message: string): boolean {
  return (thrown instanceof RangeError && /memory/i.test(message)) || /out of memory|malloc/i.test(message);
}

channel.markLoaded();
parentPort!.postMessage(READY);
for (;;) {
  const input = channel.nextRequest();
  const startedAt = performance.now();
  let result: Uint8Array;
  try {
    result = evaluateBytes(input);
  } catch (thrown) {
    // opa-wasm throws plain strings and objects as well as Errors.
    const message = thrown instanceof Error ? thrown.message : typeof thrown === "string" ? thrown : JSON.stringify(thrown);
    channel.answerError(isMemoryExhaustion(thrown, message) ? "memory" : "trap", message, performance.now() - startedAt);
    continue;
  }
  channel.answer("result", result, performance.now() - startedAt);
}
