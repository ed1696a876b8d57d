import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { systemClock } from "../clock.js";
import { applySeed } from "../demo/store-seed.js";
import { DEFAULT_POLICY_DIR } from "../paths.js";
import { openDatabase } from "../store/database.js";
import { RevisionWriter } from "../store/revision-writer.js";
import { createSqliteStores } from "../store/stores.js";
import { jsonReport, junitXml, summaryText } from "../xtest/report.js";
import { loadSuite, suiteSeeds } from "../xtest/suite.js";
import { ApiKeyStore } from "../identity/api-keys.js";
import { loadKeySecret } from "../identity/key-secret.js";
import { runXtest } from "../xtest/xtest.js";

export const XTEST_USAGE = `bulkhead xtest - cross-tenant attack suites

Usage:
  bulkhead xtest <suite.yaml> [--target HOST:PORT] [--token T] [--bundle DIR] [--junit FILE] [--json FILE]
  bulkhead xtest seed <suite.yaml> --db FILE

Generates the attack matrix from the suite (wrong tenant, non-member, vertical
role, plan, billing, rollout, API key and job attacks) and runs it in process
against the compiled Wasm bundle, or against a live sidecar with --target (its
store must hold the suite's state: 'xtest seed' writes it into a database file).

  --target HOST:PORT  run against a live sidecar over gRPC
  --token T           caller token for the live sidecar
  --bundle DIR        compiled bundle (default dist/policies)
  --junit FILE        write JUnit XML
  --json FILE         write every case and outcome as JSON

Exit codes: 0 all passed, 1 at least one leak (an unexpected allow),
3 no leak but expectations failed (an expected allow was denied, or a deny
lacked its named reason), 2 bad usage or suite.
`;

export async function xtestCommand(args: string[]): Promise<number> {
  if (args[0] === "seed") return seedCommand(args.slice(1));
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      target: { type: "string" },
      token: { type: "string" },
      bundle: { type: "string" },
      junit: { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || positionals.length !== 1) {
    (values.help ? process.stdout : process.stderr).write(XTEST_USAGE);
    return values.help ? 0 : 2;
  }
  const run = await runXtest({
    suitePath: positionals[0]!,
    bundleDir: values.bundle ?? DEFAULT_POLICY_DIR,
    ...(values.target && { target: values.target }),
    ...(values.token && { token: values.token }),
    progress: (done, total) => process.stderr.write(`xtest: ${done}/${total} cases\n`),
  });
  console.log(summaryText(run.suite.name, run.report));
  if (values.junit) writeFileSync(values.junit, junitXml(run.suite.name, run.report));
  if (values.json) writeFileSync(values.json, jsonReport(run.suite.name, run.report));
  if (run.report.leaks.length > 0) return 1;
  return run.report.failures.length > 0 ? 3 : 0;
}

/** Writes a suite's state into an empty database, so a live sidecar can serve it. */
function seedCommand(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { db: { type: "string" } } });
  if (positionals.length !== 1 || !values.db) {
    process.stderr.write(XTEST_USAGE);
    return 2;
  }
  const suite = loadSuite(positionals[0]!);
  const db = openDatabase(values.db);
  try {
    if ((db.prepare("SELECT count(*) FROM tenants").pluck().get() as number) > 0) {
      process.stderr.write(`bulkhead xtest seed: ${values.db} already has tenants; seed an empty database\n`);
      return 2;
    }
    const writer = new RevisionWriter(db, systemClock);
    const stores = createSqliteStores(db);
    // Keys are hashed with the secret the sidecar on this database will use.
    const apiKeys = new ApiKeyStore(db, loadKeySecret(values.db, process.env.BULKHEAD_KEY_SECRET));
    for (const seed of suiteSeeds(suite)) applySeed(writer, stores, seed, apiKeys);
    console.error(`bulkhead: seeded suite "${suite.name}" into ${values.db}`);
    return 0;
  } finally {
    db.close();
  }
}
