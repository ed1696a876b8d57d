/**
 * The body of the decision-log worker thread (decision-log-thread.ts, ADR
 * 91). It owns a second connection to the store and reads this process's
 * journal by position; the serving thread appends to it and is the only one
 * that truncates it, after a reply said all of it is in the table. It
 * imports only the table code and the store's opener, so the compiled file
 * under dist/ serves the TypeScript sources under vitest too.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { workerData } from "node:worker_threads";
import { openConnection } from "../store/database.js";
import { DecisionTable, parseJournal } from "./decision-table.js";
import type { ImportBatch, ImportReply, ThreadSetup } from "./decision-log-thread.js";

const setup = workerData as ThreadSetup;
const db = openConnection(setup.dbPath);
const table = new DecisionTable(db);
/** Opened at the first batch: the serving thread creates the journal after starting this thread. */
let journal: number | null = null;
const signal = new Int32Array(setup.signal);

function reply(message: ImportReply | "closed"): void {
  setup.port.postMessage(message);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

function importBatch(batch: ImportBatch): ImportReply {
  try {
    journal ??= openSync(setup.journal, "r");
    const chunk = Buffer.alloc(batch.to - batch.from);
    let read = 0;
    while (read < chunk.length) {
      const n = readSync(journal, chunk, read, chunk.length - read, batch.from + read);
      if (n === 0) break; // truncated meanwhile: cannot be, the serving thread truncates only after a reply
      read += n;
    }
    const end = chunk.subarray(0, read).lastIndexOf(0x0a) + 1; // whole lines only
    const { records, unreadable } = parseJournal(chunk.subarray(0, end).toString("utf8"));
    table.write(records, batch.dropped + unreadable);
    return { id: batch.id, ok: true, end, count: records.length, unreadable, ...(batch.wantRecords && { records }) };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { id: batch.id, ok: false, code: typeof code === "string" ? code : undefined, message: (error as Error).message };
  }
}

setup.port.on("message", (message: ImportBatch | "close") => {
  if (message !== "close") return reply(importBatch(message));
  db.close();
  if (journal !== null) closeSync(journal);
  reply("closed");
  setup.port.close();
});
