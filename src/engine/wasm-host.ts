/**
 * The two host APIs the evaluation pool needs that this project's TypeScript
 * lib (ES2023, no DOM) does not declare; Node has both (WebAssembly since
 * forever, Atomics.waitAsync since 16).
 */

/** A compiled WebAssembly.Module: compiled once, shared with every worker by postMessage. */
export type WasmModule = object;

const host = globalThis as unknown as {
  WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> };
  Atomics: {
    waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: boolean; value: string | Promise<string> };
  };
};

export const compileWasm = (bytes: Uint8Array): Promise<WasmModule> => host.WebAssembly.compile(bytes);

/** Resolves "ok", "not-equal" or "timed-out", like Atomics.wait without blocking. */
export async function waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): Promise<string> {
  const waited = host.Atomics.waitAsync(array, index, value, timeoutMs);
  return waited.value;
}
