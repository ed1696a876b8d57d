// Creates the benchmark database through the project's own openDatabase (so
// migrations run) and writes the seeded store in one RevisionWriter write:
// one transaction of prepared-statement inserts, which is what applySeed does.
import { join } from "node:path";
import { storeSeed } from "./request-mix.mjs";

export async function seedStore(dist, dbPath, seed) {
  const { openDatabase } = await import(join(dist, "store", "database.js"));
  const { RevisionWriter } = await import(join(dist, "store", "revision-writer.js"));
  const { createSqliteStores } = await import(join(dist, "store", "stores.js"));
  const { applySeed } = await import(join(dist, "demo", "store-seed.js"));
  const { systemClock } = await import(join(dist, "clock.js"));
  const db = openDatabase(dbPath);
  const data = storeSeed(seed);
  const revision = applySeed(new RevisionWriter(db, systemClock), createSqliteStores(db), data);
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  return { revision, tenants: data.tenants.length, memberships: data.memberships.length, plans: data.plans.length };
}
