/**
 * The shared memory one evaluation worker and the main thread talk through
 * (issue 19, ADR 55). A postMessage round trip (structured clone both ways,
 * a message-port wake-up on each thread, the worker's event loop) cost about
 * as much CPU as the evaluation itself; here the main thread writes the
 * input's UTF-8 bytes into a SharedArrayBuffer and flips a turn word, the
 * worker, blocked in Atomics.wait, evaluates straight from those bytes and
 * writes the result's JSON bytes back. One request at a time per channel.
 *
 * Layout: eight Int32 header words (five used), then the payload (input, or the reply).
 * The buffer is growable, so it starts small and grows to the largest input
 * or result seen, up to the Wasm heap's maximum (neither can be larger).
 */
import { waitAsync } from "./wasm-host.js";

/** Header words. */
const TURN = 0; // whose move: MAIN (a reply, or nothing yet) or WORKER (a request)
const LOADED = 1; // 1 once the worker has loaded the policy
const LENGTH = 2; // payload bytes
const OUTCOME = 3; // an Outcome, for a reply
const ELAPSED = 4; // microseconds the worker spent evaluating, for a reply
const HEADER_WORDS = 8;
const HEADER_BYTES = HEADER_WORDS * 4;

const MAIN = 0;
const WORKER = 1;

const INITIAL_BYTES = 64 * 1024;
const MAXIMUM_BYTES = HEADER_BYTES + 64 * 1024 * 1024;

const OUTCOMES = ["result", "trap", "memory"] as const;
/** How the worker's evaluation ended: result JSON, or an error message (`memory`: the Wasm heap ran out). */
export type Outcome = (typeof OUTCOMES)[number];

export interface Reply {
  outcome: Outcome;
  /** The result set as JSON text, or the error message. */
  text: string;
  /**
   * Milliseconds the worker spent evaluating, by its own clock. A reply can
   * reach the main thread after the budget (its event loop was held up while
   * the worker finished), so the pool judges the budget by this, not by when
   * it happened to look.
   */
  ms: number;
}

/** The ES2024 growable SharedArrayBuffer, which this project's ES2023 lib does not declare (Node has it since 20). */
interface GrowableSharedArrayBuffer extends SharedArrayBuffer {
  grow(byteLength: number): void;
}
const GrowableShared = SharedArrayBuffer as unknown as new (bytes: number, options: { maxByteLength: number }) => GrowableSharedArrayBuffer;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class EvaluationChannel {
  private readonly header: Int32Array;
  /** Tracks the buffer's length as it grows. */
  private readonly payload: Uint8Array;

  /** A new channel (main thread); pass `buffer` to the worker, which wraps it with the constructor. */
  static create(): EvaluationChannel {
    return new EvaluationChannel(new GrowableShared(INITIAL_BYTES, { maxByteLength: MAXIMUM_BYTES }));
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, HEADER_WORDS);
    this.payload = new Uint8Array(buffer, HEADER_BYTES);
  }

  // Main thread.

  /** Writes the input and hands the turn to the worker; false if the input cannot fit. */
  send(json: string): boolean {
    let { read, written } = encoder.encodeInto(json, this.payload);
    if (read < json.length) {
      // UTF-8 takes at most 3 bytes per UTF-16 unit.
      this.ensure(Math.min(json.length * 3, MAXIMUM_BYTES - HEADER_BYTES));
      ({ read, written } = encoder.encodeInto(json, this.payload));
      if (read < json.length) return false;
    }
    this.header[LENGTH] = written;
    Atomics.store(this.header, TURN, WORKER);
    Atomics.notify(this.header, TURN);
    return true;
  }

  /** The worker's reply, or undefined if none came within `timeoutMs` (or `release` was called). */
  async reply(timeoutMs: number): Promise<Reply | undefined> {
    await waitAsync(this.header, TURN, WORKER, timeoutMs);
    return this.takeReply();
  }

  /** The same, blocking this thread (the synchronous lane). */
  replySync(timeoutMs: number): Reply | undefined {
    Atomics.wait(this.header, TURN, WORKER, timeoutMs);
    return this.takeReply();
  }

  /** Wakes a pending `reply` without a reply (its worker died or was replaced), so no waiter is left behind. */
  release(): void {
    Atomics.notify(this.header, TURN);
  }

  async loaded(timeoutMs: number): Promise<boolean> {
    return (await waitAsync(this.header, LOADED, 0, timeoutMs)) !== "timed-out";
  }

  loadedSync(timeoutMs: number): boolean {
    return Atomics.load(this.header, LOADED) === 1 || Atomics.wait(this.header, LOADED, 0, timeoutMs) !== "timed-out";
  }

  private takeReply(): Reply | undefined {
    if (Atomics.load(this.header, TURN) !== MAIN) return undefined;
    const bytes = this.payload.subarray(0, this.header[LENGTH]);
    return { outcome: OUTCOMES[this.header[OUTCOME]!]!, text: decoder.decode(bytes), ms: this.header[ELAPSED]! / 1000 };
  }

  // Worker thread.

  markLoaded(): void {
    Atomics.store(this.header, LOADED, 1);
    Atomics.notify(this.header, LOADED);
  }

  /** Blocks until the main thread sends a request; returns the input bytes (valid until `answer`). */
  nextRequest(): Uint8Array {
    while (Atomics.load(this.header, TURN) !== WORKER) Atomics.wait(this.header, TURN, MAIN);
    return this.payload.subarray(0, this.header[LENGTH]);
  }

  /** Writes the reply (and how long the evaluation took) and hands the turn back. */
  answer(outcome: Outcome, bytes: Uint8Array, elapsedMs: number): void {
    if (!this.ensure(bytes.byteLength)) {
      outcome = "memory";
      bytes = encoder.encode(`a reply of ${bytes.byteLength} bytes does not fit the evaluation channel`);
    }
    this.payload.set(bytes);
    this.header[LENGTH] = bytes.byteLength;
    this.header[OUTCOME] = OUTCOMES.indexOf(outcome);
    this.header[ELAPSED] = Math.min(2 ** 31 - 1, Math.round(elapsedMs * 1000));
    Atomics.store(this.header, TURN, MAIN);
    Atomics.notify(this.header, TURN);
  }

  answerError(outcome: Exclude<Outcome, "result">, message: string, elapsedMs: number): void {
    this.answer(outcome, encoder.encode(message), elapsedMs);
  }

  /** Grows the payload to at least `bytes`, within the maximum; false if it cannot. */
  private ensure(bytes: number): boolean {
    const needed = HEADER_BYTES + bytes;
    if (needed <= this.buffer.byteLength) return true;
    if (needed > MAXIMUM_BYTES) return false;
    (this.buffer as GrowableSharedArrayBuffer).grow(Math.min(MAXIMUM_BYTES, Math.max(needed, this.buffer.byteLength * 2)));
    return true;
  }
}
