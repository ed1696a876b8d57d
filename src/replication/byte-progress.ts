/**
 * Byte-level progress of a long snapshot transfer (issue 13, ADR 84): one
 * line "<what>: 12.0 of 40.0 MiB (30%, 8.1 MiB/s)" whenever `everyBytes`
 * more have moved or `everyMs` have passed since the last line, whichever
 * comes first, checked as chunks arrive, so never a line per chunk. A
 * transfer that printed any line ends with a final one; a short one stays
 * silent.
 */
export interface ProgressSettings {
  /** Bytes between two lines (default 16 MiB). */
  everyBytes?: number;
  /** Milliseconds between two lines (default 5 s). */
  everyMs?: number;
  /** Object store chunk size of an upload, and the slices it is read in (default 128 KiB, the store's default). */
  chunkBytes?: number;
}

export const PROGRESS_DEFAULTS = { everyBytes: 16 * 2 ** 20, everyMs: 5_000, chunkBytes: 128 * 2 ** 10 } as const;

export class ByteProgress {
  private done = 0;
  private lastBytes = 0;
  private lastAt: number;
  private readonly startedAt: number;
  private printed = false;
  private readonly everyBytes: number;
  private readonly everyMs: number;

  constructor(
    private readonly what: string,
    private readonly total: number,
    private readonly log: (message: string) => void,
    settings: ProgressSettings = {},
    private readonly now: () => number = () => performance.now(),
  ) {
    this.everyBytes = settings.everyBytes ?? PROGRESS_DEFAULTS.everyBytes;
    this.everyMs = settings.everyMs ?? PROGRESS_DEFAULTS.everyMs;
    this.startedAt = this.lastAt = now();
  }

  /** Counts `bytes` more; prints a line if a threshold was crossed. */
  add(bytes: number): void {
    this.done += bytes;
    const at = this.now();
    if (this.done >= this.total) return; // the final line is finish()'s
    if (this.done - this.lastBytes < this.everyBytes && at - this.lastAt < this.everyMs) return;
    this.lastBytes = this.done;
    this.lastAt = at;
    this.print(at);
  }

  /** The closing line, only after a transfer long enough to have printed one. */
  finish(): void {
    if (this.printed) this.print(this.now());
  }

  private print(at: number): void {
    this.printed = true;
    const seconds = Math.max((at - this.startedAt) / 1000, 0.001);
    const percent = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    this.log(`${this.what}: ${mib(this.done)} of ${mib(this.total)} MiB (${percent}%, ${mib(this.done / seconds)} MiB/s)`);
  }
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** `bytes` as a stream of `chunkBytes` slices, counting each slice as the consumer pulls it. */
export function countedStream(bytes: Uint8Array, chunkBytes: number, progress: ByteProgress): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const slice = bytes.subarray(offset, offset + chunkBytes);
      offset += slice.length;
      progress.add(slice.length);
      controller.enqueue(slice);
    },
  });
}

/** Reads a stream to its end into one buffer, counting each chunk. */
export async function readCounted(stream: ReadableStream<Uint8Array>, progress: ByteProgress): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks);
    if (!value?.length) continue;
    chunks.push(value);
    progress.add(value.length);
  }
}
