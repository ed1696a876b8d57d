import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Clock } from "../clock.js";
import { wrapError } from "../errors.js";

/** What each sidecar says about itself in `<stream>_fleet` (ADR 90). */
export interface SidecarStatus {
  id: string;
  host: string;
  policyRevision: string;
  /** The last stream sequence this sidecar has applied (its store revision). */
  appliedSeq: number;
  /** This sidecar's clock, epoch ms. */
  updatedAt: number;
}

/** One row of the fleet page: a status, its lag behind the stream, and whether it stopped reporting. */
export interface FleetMember extends SidecarStatus {
  lagEntries: number;
  stale: boolean;
}

export interface FleetView {
  mode: "single-node" | "replicated";
  /** The stream's last sequence (replicated) or this store's revision (single-node). */
  lastSeq: number;
  sidecars: FleetMember[];
}

export const FLEET_PUBLISH_MS = 5_000;
/** Three missed reports and a row is marked stale; the bucket forgets it after FLEET_TTL_MS. */
export const FLEET_STALE_MS = 3 * FLEET_PUBLISH_MS;
export const FLEET_TTL_MS = 60_000;

export const fleetBucket = (stream: string) => `${stream}_fleet`;

/** KV keys allow letters, digits, `-`, `_`, `=`, `.`, `/`; a hostname may hold more. */
export const fleetKey = (id: string) => id.replace(/[^A-Za-z0-9_=-]/g, "_");

/**
 * Publishes this sidecar's status every FLEET_PUBLISH_MS on a timer of its
 * own, never on the decision path: a NATS that is slow or down only makes
 * the row stale. Failures are logged once per run of failures.
 */
export class FleetPublisher {
  private timer: NodeJS.Timeout | undefined;
  private bucket: Promise<KV> | undefined;
  private failing = false;

  constructor(
    private readonly deps: {
      connection: NatsConnection;
      stream: string;
      replicas: number;
      self: () => SidecarStatus;
      log: (message: string) => void;
    },
  ) {}

  start(everyMs = FLEET_PUBLISH_MS): void {
    void this.publish();
    this.timer = setInterval(() => void this.publish(), everyMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One report; resolves either way (a failure is logged, not thrown). */
  async publish(): Promise<void> {
    try {
      this.bucket ??= openFleetBucket(this.deps.connection, this.deps.stream, this.deps.replicas);
      const status = this.deps.self();
      await (await this.bucket).put(fleetKey(status.id), JSON.stringify(status));
      if (this.failing) this.deps.log(`fleet status: publishing to ${fleetBucket(this.deps.stream)} again`);
      this.failing = false;
    } catch (error) {
      this.bucket = undefined;
      if (!this.failing) this.deps.log(`fleet status: could not publish to ${fleetBucket(this.deps.stream)}: ${(error as Error).message}`);
      this.failing = true;
    }
  }
}

function openFleetBucket(connection: NatsConnection, stream: string, replicas: number): Promise<KV> {
  // history 1 and a TTL: a sidecar that went away leaves the page by itself.
  return new Kvm(connection).create(fleetBucket(stream), { history: 1, ttl: FLEET_TTL_MS, replicas });
}

/** The fleet page's data: every status in the bucket, against the stream's last sequence now. */
export async function readFleet(connection: NatsConnection, stream: string, replicas: number, clock: Clock): Promise<FleetView> {
  try {
    const jsm = await jetstreamManager(connection);
    const lastSeq = (await jsm.streams.info(stream)).state.last_seq;
    const bucket = await openFleetBucket(connection, stream, replicas);
    const sidecars: FleetMember[] = [];
    for await (const key of await bucket.keys()) {
      const entry = await bucket.get(key);
      if (!entry || entry.operation !== "PUT") continue;
      sidecars.push(memberOf(entry.json<SidecarStatus>(), lastSeq, clock.now()));
    }
    sidecars.sort((a, b) => a.id.localeCompare(b.id));
    return { mode: "replicated", lastSeq, sidecars };
  } catch (error) {
    throw wrapError("REPLICATION_UNAVAILABLE", `could not read the fleet of stream '${stream}'`, error);
  }
}

export function memberOf(status: SidecarStatus, lastSeq: number, now: number): FleetMember {
  return { ...status, lagEntries: Math.max(0, lastSeq - status.appliedSeq), stale: now - status.updatedAt > FLEET_STALE_MS };
}
