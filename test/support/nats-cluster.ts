import { execFileSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { spawnUntil } from "./processes.js";

/** One nats-server of a test cluster, with the ports it bound. */
export interface NatsNode {
  readonly name: string;
  /** nats://127.0.0.1:<client port> */
  url: string;
  clientPort: number;
  routePort: number;
  child: ChildProcess | undefined;
}

/** A real JetStream cluster on loopback (test/replicated/). */
export interface NatsCluster {
  readonly nodes: NatsNode[];
  /** Every running node's client URL, for a client's server list. */
  urls(): string[];
  /** SIGKILLs one node (its JetStream store stays on disk for a restart). */
  kill(index: number): Promise<void>;
  /** Starts a stopped node again on its former ports, routed to the others. */
  restart(index: number): Promise<void>;
  stop(): Promise<void>;
}

const natsServerBinary = (): string =>
  execFileSync("bash", [join(PACKAGE_ROOT, "scripts", "ensure-tool.sh"), "nats-server"], { encoding: "utf8" }).trim();

/**
 * Starts `size` nats-servers as one JetStream cluster on loopback. Every
 * server binds port -1 (nats-server's "any free port") and the ports are
 * read from its log, so nothing races for a port picked in advance. The
 * first node is the seed the others route to; routes are gossiped from it,
 * so the cluster is a full mesh once all have started.
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const binary = natsServerBinary();
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-nats-"));
  const nodes: NatsNode[] = [];

  const launch = async (node: NatsNode, clientPort: number, routePort: number, routes: number[]): Promise<void> => {
    const store = join(dir, node.name);
    mkdirSync(store, { recursive: true });
    const config = join(dir, `${node.name}.conf`);
    writeFileSync(config, [
      `server_name: ${node.name}`,
      `listen: "127.0.0.1:${clientPort}"`,
      `jetstream { store_dir: ${JSON.stringify(store)} }`,
      `cluster {`,
      `  name: bulkhead-test`,
      `  listen: "127.0.0.1:${routePort}"`,
      `  routes: [${routes.map((port) => JSON.stringify(`nats-route://127.0.0.1:${port}`)).join(", ")}]`,
      `}`,
    ].join("\n"));
    // Ports and readiness are logged in an order that varies by version, so
    // look ahead for both ports anywhere before the ready line.
    const { child, match } = await spawnUntil(binary, ["-c", config], READY);
    node.child = child;
    node.clientPort = Number(match[1]);
    node.routePort = Number(match[2]);
    node.url = `nats://127.0.0.1:${node.clientPort}`;
  };

  for (let i = 0; i < size; i++) {
    const node: NatsNode = { name: `n${i + 1}`, url: "", clientPort: 0, routePort: 0, child: undefined };
    // JetStream refuses to start clustered without a route, and the seed
    // cannot know its peers' ports yet: it gets port 1 (never listening, so
    // refused at once) until the peers dial in and gossip the real mesh.
    await launch(node, -1, -1, nodes.length > 0 ? [nodes[0]!.routePort] : [PLACEHOLDER_ROUTE_PORT]);
    nodes.push(node);
  }

  const running = () => nodes.filter((node) => node.child && node.child.exitCode === null && node.child.signalCode === null);
  const kill = async (index: number) => {
    const child = nodes[index]!.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  return {
    nodes,
    urls: () => running().map((node) => node.url),
    kill,
    // A restarted node takes its old ports back: its peers keep dialling the
    // route port they knew, and clients keep its URL in their server list.
    restart: (index) => {
      const node = nodes[index]!;
      return launch(node, node.clientPort, node.routePort, nodes.filter((other) => other !== node).map((other) => other.routePort));
    },
    stop: async () => {
      for (let i = 0; i < nodes.length; i++) await kill(i);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const PLACEHOLDER_ROUTE_PORT = 1;
const READY = /^(?=[\s\S]*Listening for client connections on 127\.0\.0\.1:(\d+))(?=[\s\S]*Listening for route connections on 127\.0\.0\.1:(\d+))[\s\S]*Server is ready/;
