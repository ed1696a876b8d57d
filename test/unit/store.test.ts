import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { testClock } from "../support/test-time.js";
import { ChangeTracker } from "../../src/store/change-tracker.js";
import { openDatabase } from "../../src/store/database.js";
import { MIGRATIONS } from "../../src/store/migrations.js";
import { readRevision, RevisionWriter } from "../../src/store/revision-writer.js";
import { createSqliteStores } from "../../src/store/stores.js";
import { applySeed } from "../../src/demo/store-seed.js";
import { DEMO_DATASET } from "../../src/demo/demo-dataset.js";

const newStore = (path = join(mkdtempSync(join(tmpdir(), "bulkhead-store-")), "b.db")) => {
  const db = openDatabase(path);
  const writer = new RevisionWriter(db, testClock());
  const tracker = new ChangeTracker(db);
  writer.onCommit((c, revision) => tracker.observe(c, revision));
  return { db, writer, tracker, stores: createSqliteStores(db), path };
};

describe("migrations", () => {
  it("bring a new file to the latest version with WAL and foreign keys on", () => {
    const { db } = newStore();
    expect(db.pragma("user_version", { simple: true })).toBe(MIGRATIONS.at(-1)!.version);
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(db.pragma("foreign_keys", { simple: true })).toBe(1);
  });

  it("name the path, as a usage error, when the database cannot be opened", () => {
    const file = join(mkdtempSync(join(tmpdir(), "bulkhead-store-")), "not-a-dir");
    writeFileSync(file, "");
    expect(() => openDatabase(join(file, "b.db"))).toThrow(UsageError);
    expect(() => openDatabase(join(file, "b.db"))).toThrow(`cannot open the database ${join(file, "b.db")}`);
    expect(() => openDatabase("/proc/bulkhead.db")).toThrow(/cannot open the database \/proc\/bulkhead\.db/);
  });

  it("refuse a database from a newer build", () => {
    const { db, path } = newStore();
    db.pragma("user_version = 999");
    db.close();
    expect(() => openDatabase(path)).toThrow(/newer than this build knows/);
  });
});

describe("RevisionWriter", () => {
  it("bumps the revision once per write and records what changed", () => {
    const { db, writer, stores } = newStore();
    const first = applySeed(writer, stores, DEMO_DATASET);
    const second = writer.write((tx) =>
      stores.directory.putMembership(tx, { tenantId: "ten_acme", actorId: "usr_bob", actorType: "user", role: "member", status: "active" }),
    ).revision;
    expect([first, second]).toEqual([1, 2]);
    expect(readRevision(db)).toBe(2);
    expect(db.prepare("SELECT revision, tenant_id, kind FROM changes WHERE revision = 2").all()).toEqual([
      { revision: 2, tenant_id: "ten_acme", kind: "membership" },
    ]);
  });

  it("writes nothing, not even a revision, when the write throws", () => {
    const { db, writer, stores } = newStore();
    applySeed(writer, stores, DEMO_DATASET);
    expect(() =>
      writer.write((tx) => {
        stores.directory.putMembership(tx, { tenantId: "ten_acme", actorId: "usr_zed", actorType: "user", role: "owner", status: "active" });
        // A foreign-key violation halfway through: the whole write rolls back.
        stores.directory.putMembership(tx, { tenantId: "ten_missing", actorId: "usr_zed", actorType: "user", role: "owner", status: "active" });
      }),
    ).toThrow(/FOREIGN KEY/);
    expect(readRevision(db)).toBe(1);
    expect(stores.directory.membership("ten_acme", "usr_zed")).toBeUndefined();
  });
});

describe("ChangeTracker", () => {
  it("sees another connection's commits through data_version, per tenant", () => {
    const a = newStore();
    applySeed(a.writer, a.stores, DEMO_DATASET);
    const b = newStore(a.path);
    expect(b.tracker.sync()).toBe(1);
    const before = b.tracker.revisionOf("ten_globex");

    const revision = a.writer.write((tx) =>
      a.stores.directory.putMembership(tx, { tenantId: "ten_acme", actorId: "usr_bob", actorType: "user", role: "admin", status: "active" }),
    ).revision;
    expect(b.tracker.revision).toBe(1); // not yet synced
    expect(b.tracker.sync()).toBe(revision);
    expect(b.tracker.revisionOf("ten_acme")).toBe(revision);
    expect(b.tracker.revisionOf("ten_globex")).toBe(before);
  });

  it("does not skip another connection's lower revision that commits before its own", () => {
    const a = newStore();
    applySeed(a.writer, a.stores, DEMO_DATASET);
    const b = newStore(a.path);
    b.tracker.sync();
    const fromA = a.writer.write((tx) => a.stores.usage.set(tx, "ten_globex", "projects", 0, 2)).revision;
    const fromB = b.writer.write((tx) => b.stores.usage.set(tx, "ten_acme", "projects", 0, 5)).revision;
    expect(fromB).toBeGreaterThan(fromA);
    b.tracker.sync();
    expect(b.tracker.revisionOf("ten_globex")).toBe(fromA);
  });
});

describe("database file permissions (review, also-list)", () => {
  it("creates the database and its WAL files readable by the owner only, and tightens an old 0644 file", async () => {
    const { statSync, writeFileSync } = await import("node:fs");
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-mode-"));
    const path = join(dir, "store.db");
    const db = openDatabase(path);
    db.exec("CREATE TABLE IF NOT EXISTS mode_probe (x)"); // forces the -wal file
    for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(statSync(file).mode & 0o777).toBe(0o600);
    db.close();
    const old = join(dir, "old.db");
    writeFileSync(old, "", { mode: 0o644 });
    openDatabase(old).close();
    expect(statSync(old).mode & 0o777).toBe(0o600);
  });
});
