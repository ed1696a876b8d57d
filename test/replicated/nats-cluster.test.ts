import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";

// The ground replicated mode stands on (DESIGN.md section 11), checked on a
// real three-node JetStream cluster: a three-replica stream, per-subject
// optimistic concurrency, message-id de-duplication, and a stream that keeps
// taking writes with one node killed and catches that node up on restart.
let cluster: NatsCluster;
let nc: NatsConnection;
let js: JetStreamClient;

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  nc = await connect({ servers: cluster.urls(), reconnectTimeWait: 100 });
  // The cluster elects a meta leader shortly after the third node starts;
  // until then JetStream API requests time out.
  for (let tries = 0; ; tries++) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 1000 });
      await jsm.streams.add({ name: "LOG", subjects: ["log.>"], num_replicas: 3, duplicate_window: 60_000_000_000 });
      break;
    } catch (error) {
      if (tries > 30) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  js = jetstream(nc);
}, 90_000);

afterAll(async () => {
  await nc?.close();
  await cluster?.stop();
});

/**
 * While the killed node's streams elect a new leader, a publish can get "no
 * responders" or time out: retried under the same message id, a write that
 * was stored after all is not stored twice. This is the retry replicated mode
 * needs around every append.
 */
async function publishRetrying(subject: string, data: string, msgID: string) {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      return await js.publish(subject, data, { msgID, timeout: 2000 });
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe("a three-node JetStream cluster on loopback", () => {
  it("stores the stream on all three nodes", async () => {
    const info = await (await jetstreamManager(nc)).streams.info("LOG");
    expect(info.config.num_replicas).toBe(3);
    expect(new Set([info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)])).toEqual(new Set(["n1", "n2", "n3"]));
  });

  it("refuses a publish whose expected last subject sequence is stale (10071)", async () => {
    const first = await js.publish("log.usage.ten_a.api_calls", "1");
    const second = await js.publish("log.usage.ten_a.api_calls", "2", { expect: { lastSubjectSequence: first.seq } });
    expect(second.seq).toBeGreaterThan(first.seq);
    const stale = await js.publish("log.usage.ten_a.api_calls", "3", { expect: { lastSubjectSequence: first.seq } }).catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(JetStreamApiError);
    expect((stale as JetStreamApiError).code).toBe(10071);
    // Another tenant's subject is not held back by this one.
    await js.publish("log.usage.ten_b.api_calls", "1", { expect: { lastSubjectSequence: 0 } });
  });

  it("stores a message id once within the duplicate window", async () => {
    const first = await js.publish("log.webhook", "evt", { msgID: "evt_123" });
    const again = await js.publish("log.webhook", "evt", { msgID: "evt_123" });
    expect(again.duplicate).toBe(true);
    expect(again.seq).toBe(first.seq);
  });

  it("keeps storing with one node killed, and catches it up on restart", async () => {
    await cluster.kill(0);
    const during = [];
    for (let i = 0; i < 20; i++) during.push(await publishRetrying("log.admin", String(i), `admin-${i}`));
    expect(new Set(during.map((ack) => ack.seq)).size).toBe(20);
    await cluster.restart(0);
    // Asked through the restarted node, once it reports itself a current replica with no lag.
    const direct = await connect({ servers: [cluster.nodes[0]!.url] });
    try {
      const last = during.at(-1)!.seq;
      // The restarted node answers JetStream requests only once it has rejoined
      // the meta group, which takes a while on a loaded machine.
      const deadline = performance.now() + 30_000;
      for (;;) {
        const jsm = await jetstreamManager(direct, { timeout: 1000 }).catch(() => undefined);
        const info = await jsm?.streams.info("LOG").catch(() => undefined);
        const replica = info?.cluster?.replicas?.find((r) => r.name === "n1");
        if (jsm && info && (info.cluster?.leader === "n1" || (replica?.current && !replica.lag)) && info.state.last_seq >= last) {
          const message = await jsm.streams.getMessage("LOG", { seq: last });
          expect(message?.string()).toBe("19");
          break;
        }
        if (performance.now() > deadline) throw new Error(`n1 did not catch up: ${JSON.stringify(info?.cluster)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await direct.close();
    }
  }, 60_000);
});
