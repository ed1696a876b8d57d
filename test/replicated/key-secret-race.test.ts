import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream, KEY_SECRET_FINGERPRINT } from "../../src/replication/replicated-log.js";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";

// ADR 77's gap, closed: sidecars of two different key secrets opening a
// stream made before fingerprints, all at the same moment. Stream updates
// have no compare-and-set, so without an arbiter each reads "none", writes
// its own and starts; with one, exactly one secret's sidecars start.
let cluster: NatsCluster;
const connections: NatsConnection[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
}, 90_000);

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => {});
  await cluster?.stop();
});

async function connection(): Promise<NatsConnection> {
  const nc = await connect({ servers: cluster.urls() });
  connections.push(nc);
  return nc;
}

describe("a stream made before key secret fingerprints", () => {
  it("gets one fingerprint when sidecars of two secrets open it at once: the other secret's sidecars are refused", async () => {
    const stream = "OLD_STREAM";
    const setup = await connection();
    for (let tries = 0; ; tries++) {
      try {
        await (await jetstreamManager(setup, { timeout: 1000 })).streams.add({ name: stream, subjects: [`${stream}.>`], num_replicas: 3 });
        break;
      } catch (error) {
        if (tries > 30) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    const config = { natsServers: cluster.urls(), stream, stalenessMs: 5_000, replicas: 3 };
    const sidecars = await Promise.all(Array.from({ length: 8 }, async (_, i) => ({ fingerprint: i % 2 === 0 ? "fp-even" : "fp-odd", nc: await connection() })));
    const outcomes = await Promise.all(
      sidecars.map(({ fingerprint, nc }) =>
        ensureStream(nc, config, fingerprint).then(
          () => ({ fingerprint, started: true, message: "" }),
          (error: Error) => ({ fingerprint, started: false, message: error.message }),
        ),
      ),
    );
    const recorded = (await (await jetstreamManager(setup)).streams.info(stream)).config.metadata?.[KEY_SECRET_FINGERPRINT];
    expect(["fp-even", "fp-odd"]).toContain(recorded);
    for (const outcome of outcomes) {
      if (outcome.fingerprint === recorded) expect(outcome).toMatchObject({ started: true });
      else {
        expect(outcome.started).toBe(false);
        expect(outcome.message).toContain("BULKHEAD_KEY_SECRET");
      }
    }
  }, 60_000);
});
