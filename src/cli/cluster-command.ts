import { parseArgs } from "node:util";
import { natsServers, REPLICATION_DEFAULTS, streamName, wholeNumber } from "../config.js";
import { UsageError } from "../errors.js";

export const CLUSTER_USAGE = `bulkhead cluster - replicated mode (NATS JetStream) operations

Usage:
  bulkhead cluster import --db FILE --nats-url URL [--stream NAME] [--replicas N]
      seed a new, empty stream from a single-node database: the file is stored
      as the stream's snapshot at its store_revision R (object store bucket
      <stream>_snapshots) and the stream is created with first sequence R+1,
      so revisions and min_revision tokens continue. A stream that holds
      entries is refused and nothing is written. Sidecars then started with
      BULKHEAD_NATS_URL on empty files restore the snapshot and join.

--nats-url defaults to BULKHEAD_NATS_URL, --stream to BULKHEAD_NATS_STREAM or
${REPLICATION_DEFAULTS.stream}, --replicas to BULKHEAD_NATS_REPLICAS or ${REPLICATION_DEFAULTS.replicas} (3 on a three-node cluster).
`;

export async function clusterCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { db: { type: "string" }, "nats-url": { type: "string" }, stream: { type: "string" }, replicas: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  const [sub] = positionals;
  if (values.help || sub !== "import") {
    if (!values.help && sub !== undefined) process.stderr.write(`bulkhead cluster: unknown subcommand '${sub}'\n\n`);
    (values.help ? process.stdout : process.stderr).write(CLUSTER_USAGE);
    return values.help ? 0 : 2;
  }
  if (!values.db) throw new UsageError("cluster import: --db FILE is required (the single-node database to import)");
  const url = values["nats-url"] ?? process.env.BULKHEAD_NATS_URL;
  if (!url) throw new UsageError("cluster import: --nats-url URL (or BULKHEAD_NATS_URL) is required");
  const { importDatabase } = await import("../replication/cluster-import.js");
  await importDatabase({
    dbPath: values.db,
    natsServers: natsServers(url),
    stream: streamName(values.stream ?? process.env.BULKHEAD_NATS_STREAM ?? REPLICATION_DEFAULTS.stream),
    replicas: wholeNumber("--replicas", values.replicas ?? process.env.BULKHEAD_NATS_REPLICAS, REPLICATION_DEFAULTS.replicas, 1, 5),
    log: (message) => console.error(`bulkhead: ${message}`),
  });
  return 0;
}
