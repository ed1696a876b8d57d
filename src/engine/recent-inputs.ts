/**
 * A small bounded ring of policy inputs recently evaluated, as the JSON text
 * the workers were sent. A candidate bundle replays them before it may serve
 * (candidate-trial.ts), so it is tried on the shapes real traffic has (tenant
 * tags, impersonation, attributes) and not only on the smoke cases.
 *
 * Memory only, never written anywhere (ADR 45): the decision log keeps a
 * decision's outcome, not its input, and the inputs name actors and
 * resources. Bounded by count and by the length of one input, so the ring
 * holds at most `capacity * maxInputChars` characters (64 x 64 Ki).
 */
export class RecentInputs {
  private readonly ring: string[] = [];
  private next = 0;

  constructor(
    readonly capacity = 64,
    private readonly maxInputChars = 64 * 1024,
  ) {}

  /** Keeps `json` in place of the oldest; an input over the size bound is not kept. */
  add(json: string): void {
    if (this.capacity === 0 || json.length > this.maxInputChars) return;
    if (this.ring.length < this.capacity) this.ring.push(json);
    else this.ring[this.next] = json;
    this.next = (this.next + 1) % this.capacity;
  }

  /** A copy of what is held now, in no promised order. */
  sample(): string[] {
    return [...this.ring];
  }

  get size(): number {
    return this.ring.length;
  }
}
