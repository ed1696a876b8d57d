// A three-node NATS JetStream cluster on loopback for bench/cluster.mjs: the
// same layout as test/support/nats-cluster.ts and scripts/demo-cluster.mjs
// (which the bench cannot import: one is TypeScript, the other runs on
// import). Every node binds port -1 and its ports are read from its log; the
// first node is the seed the others route to, and gossip makes the mesh.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, stopServer } from "./load-tools.mjs";

const READY = /^(?=[\s\S]*Listening for client connections on 127\.0\.0\.1:(\d+))(?=[\s\S]*Listening for route connections on 127\.0\.0\.1:(\d+))[\s\S]*Server is ready/;
/** The seed cannot know its peers' ports yet: it routes to port 1 (never listening) until they dial in. */
const PLACEHOLDER_ROUTE_PORT = 1;

/** Starts `size` nats-servers in `dir` (unpinned); returns { nodes, urls, stop }. */
export async function startNatsCluster({ binary, dir, size = 3 }) {
  const nodes = [];
  try {
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      const store = join(dir, name);
      mkdirSync(store, { recursive: true });
      const config = join(dir, `${name}.conf`);
      const routes = nodes.length > 0 ? [nodes[0].routePort] : [PLACEHOLDER_ROUTE_PORT];
      writeFileSync(config, [
        `server_name: ${name}`,
        `listen: "127.0.0.1:-1"`,
        `jetstream { store_dir: ${JSON.stringify(store)} }`,
        "cluster {",
        "  name: bulkhead-bench",
        `  listen: "127.0.0.1:-1"`,
        `  routes: [${routes.map((p) => JSON.stringify(`nats-route://127.0.0.1:${p}`)).join(", ")}]`,
        "}",
      ].join("\n"));
      const server = await startServer({ command: binary, args: ["-c", config], cores: null, ready: READY });
      const match = server.log().match(READY);
      nodes.push({ name, server, url: `nats://127.0.0.1:${match[1]}`, routePort: Number(match[2]) });
    }
  } catch (error) {
    for (const node of nodes) await stopServer(node.server);
    throw error;
  }
  return {
    nodes,
    urls: () => nodes.map((n) => n.url),
    pids: () => nodes.map((n) => n.server.child.pid),
    stop: async () => {
      for (const node of nodes) await stopServer(node.server);
    },
  };
}
