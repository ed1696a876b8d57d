import { adminClient, type AdminCall } from "./admin-client.js";
import { startNatsCluster, type NatsCluster } from "./nats-cluster.js";
import { startSidecar, type SidecarOptions, type TestSidecar } from "./sidecar.js";
import type { ManualClock } from "../../src/clock.js";

export interface ReplicatedSidecars {
  cluster: NatsCluster;
  sidecars: TestSidecar[];
  /** One AdminService caller per sidecar (bootstrap token), in the same order. */
  admins: AdminCall[];
  /** Closes the admin clients, then the sidecars, then the NATS cluster. */
  close(): Promise<void>;
}

export interface ReplicatedSidecarsOptions {
  clock: ManualClock;
  /** The JetStream stream; give each test file its own so a leftover cannot leak between files. */
  stream: string;
  count?: number;
  stalenessMs?: number;
  /** Seeds the demo dataset into the empty stream (the first sidecar seeds, the others join). */
  demo?: boolean;
  /** Extra config for every sidecar (merged after the replication settings). */
  config?: SidecarOptions["config"];
}

/** The BULKHEAD_KEY_SECRET every replicated test sidecar shares: the stream refuses a sidecar with another (ADR 77). */
export const REPLICATED_KEY_SECRET = "replicated-test-key-secret";

/**
 * Starts a sidecar with BULKHEAD_KEY_SECRET set to `secret` for its start
 * (the secret is read from the environment once, while it starts), then
 * puts the environment back.
 */
export async function withKeySecret<T>(secret: string, start: () => Promise<T>): Promise<T> {
  const before = process.env.BULKHEAD_KEY_SECRET;
  process.env.BULKHEAD_KEY_SECRET = secret;
  try {
    return await start();
  } finally {
    if (before === undefined) delete process.env.BULKHEAD_KEY_SECRET;
    else process.env.BULKHEAD_KEY_SECRET = before;
  }
}

/**
 * A real three-node JetStream cluster on loopback and `count` real sidecars
 * on it, each with its own SQLite file: the shape every replicated test needs.
 * Sidecars start one at a time, so the first seeds and the others join.
 */
export async function startReplicatedSidecars(options: ReplicatedSidecarsOptions): Promise<ReplicatedSidecars> {
  const cluster = await startNatsCluster(3);
  const replication = { natsServers: cluster.urls(), stream: options.stream, stalenessMs: options.stalenessMs ?? 5_000, replicas: 3 };
  const sidecars: TestSidecar[] = [];
  const admins: AdminCall[] = [];
  const closers: (() => void)[] = [];
  const close = async () => {
    for (const closeClient of closers) closeClient();
    for (const s of sidecars) await s.close().catch(() => {});
    await cluster.stop();
  };
  try {
    for (let i = 0; i < (options.count ?? 3); i++) {
      const sidecar = await withKeySecret(REPLICATED_KEY_SECRET, () =>
        startSidecar({ demo: options.demo ?? true, config: { replication, ...options.config }, runtime: { clock: options.clock } }));
      sidecars.push(sidecar);
      const { client, call } = adminClient(sidecar.grpcAddress);
      closers.push(() => client.close());
      admins.push(call);
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { cluster, sidecars, admins, close };
}
