import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from "node:worker_threads";
import { PACKAGE_ROOT } from "../paths.js";
import type { DecisionRecord } from "./decision-log.js";

/** Import the journal's bytes [from, to) into the table, and add `dropped` to meta `decisions_dropped`, in one transaction. */
export interface ImportBatch {
  id: number;
  from: number;
  to: number;
  dropped: number;
  /** Send the records back (for the onWritten sinks, ADR 71). */
  wantRecords: boolean;
}

/** What the worker did with a batch: `end` bytes (whole lines) imported, or nothing (the error's code and message). */
export type ImportReply =
  | { id: number; ok: true; end: number; count: number; unreadable: number; records?: DecisionRecord[] }
  | { id: number; ok: false; code: string | undefined; message: string };

export interface ThreadSetup {
  dbPath: string;
  journal: string;
  port: MessagePort;
  /** Int32 word 0: replies posted so far, so the serving thread can block for one (close, flush on query). */
  signal: SharedArrayBuffer;
}

/** Longest a synchronous flush waits for the worker's reply before it writes on the serving thread itself. */
const REPLY_WAIT_MS = 10_000;

/** The compiled worker, found as evaluation-pool.ts finds its worker (under vitest the build's copy serves). */
const WORKER_URL: URL = (() => {
  const beside = new URL("./decision-log-worker.js", import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return pathToFileURL(join(PACKAGE_ROOT, "dist", "src", "audit", "decision-log-worker.js"));
})();

/**
 * The decision-log worker thread (ADR 91): its own connection to the store
 * file, it reads a byte range of this process's journal, inserts it with the
 * hash chain and commits, off the serving thread. One batch is in flight at
 * a time (DecisionLog's rule). Replies arrive as 'message' events, or are
 * taken synchronously by waitReply() when the serving thread must know now.
 */
export class DecisionLogThread {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly signal: Int32Array;
  private alive = true;
  private onReplyHandler: (reply: ImportReply) => void = () => {};
  private onDeadHandler: (why: string) => void = () => {};

  constructor(dbPath: string, journal: string) {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(4);
    const setup: ThreadSetup = { dbPath, journal, port: port2, signal };
    this.worker = new Worker(WORKER_URL, { workerData: setup, transferList: [port2] });
    this.port = port1;
    this.signal = new Int32Array(signal);
    this.port.on("message", (reply: ImportReply) => this.onReplyHandler(reply));
    this.worker.on("error", (error) => this.died(`the decision-log worker failed: ${error.message}`));
    this.worker.on("exit", (code) => this.died(`the decision-log worker exited (${code})`));
    // Neither holds the process open: what is not in the table yet is in the journal.
    this.worker.unref();
    this.port.unref();
  }

  get running(): boolean {
    return this.alive;
  }

  onReply(handler: (reply: ImportReply) => void): void {
    this.onReplyHandler = handler;
  }

  onDead(handler: (why: string) => void): void {
    this.onDeadHandler = handler;
  }

  post(batch: ImportBatch): void {
    this.port.postMessage(batch);
  }

  /** Blocks until the next reply (which then raises no 'message' event), or null if none came in time or the worker is gone. */
  waitReply(timeoutMs = REPLY_WAIT_MS): ImportReply | null {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = Atomics.load(this.signal, 0);
      const message = receiveMessageOnPort(this.port);
      if (message) return message.message as ImportReply;
      const left = deadline - performance.now();
      if (!this.alive || left <= 0) return null;
      Atomics.wait(this.signal, 0, seen, Math.min(left, 100));
    }
  }

  /** Asks the worker to close its connection, waits (bounded) for it, and ends the thread. */
  stop(): void {
    if (!this.alive) return;
    this.alive = false;
    this.port.postMessage("close");
    this.waitReply(1_000);
    this.port.close();
    void this.worker.terminate();
  }

  private died(why: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.onDeadHandler(why);
  }
}
