import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutoCheckpoints } from "../../src/audit/auto-checkpoints.js";
import { DecisionLog } from "../../src/audit/decision-log.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { openDatabase } from "../../src/store/database.js";
import { startSidecar, type TestSidecar } from "../support/sidecar.js";
import { HOUR, MINUTE, testClock, TEST_START } from "../support/test-time.js";

// Signed checkpoints the sidecar writes itself (issue 17, ADR 58). A real
// sidecar on a test clock writes decisions; its checkpoint job signs the
// chain heads into files, and the built CLI verifies a store against the
// newest of them: intact, with a cut tail, and with a forged checkpoint.
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "bulkhead-auto-checkpoints-"));
const { privateKey, publicKey } = generateKeyPairSync("ed25519");
const keyFile = join(work, "audit.key");
const pubFile = join(work, "audit.pub");
writeFileSync(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }));
writeFileSync(pubFile, publicKey.export({ type: "spki", format: "pem" }));

function bulkhead(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const check = (sidecar: TestSidecar, i: number) =>
  sidecar.check({ principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project", id: `prj_${i}`, tenantId: "ten_acme" } });

const checkpointFiles = (dir: string) => readdirSync(dir).filter((n) => n.endsWith(".json")).sort();

describe("the sidecar's own checkpoints", () => {
  const clock = testClock();
  const dir = join(work, "checkpoints");
  let sidecar: TestSidecar;

  beforeAll(async () => {
    sidecar = await startSidecar({
      runtime: { clock },
      config: { auditCheckpoints: { keyFile, dir, everyRecords: 5, intervalSeconds: 3600 } },
    });
    // The tests call tick() themselves, so what is due does not depend on timing; the timer has its own test below.
    sidecar.bulkhead.auditJobs.checkpoints!.stop();
  });
  afterAll(() => sidecar.close());

  const tick = () => sidecar.bulkhead.auditJobs.checkpoints!.tick();

  it("writes the first once anything is logged, then one after N more records, and none with nothing new", async () => {
    expect(tick(), "nothing logged yet").toBeNull();
    await check(sidecar, 0);
    sidecar.bulkhead.decisionLog.flush();
    expect(tick(), "no checkpoint yet: the first record is covered at once").not.toBeNull();
    for (let i = 1; i < 5; i++) await check(sidecar, i);
    sidecar.bulkhead.decisionLog.flush();
    expect(tick(), "4 records since, interval not passed: not due").toBeNull();
    await check(sidecar, 5);
    sidecar.bulkhead.decisionLog.flush();
    const file = tick();
    expect(file, "5 records since").not.toBeNull();
    expect(tick(), "nothing appended since").toBeNull();
    const checkpoint = JSON.parse(readFileSync(file!, "utf8")) as { at: string; signature?: string; chains: { decision_log: { records: number } } };
    expect(checkpoint.chains.decision_log.records).toBe(6);
    expect(checkpoint.signature).toBeTruthy();
    expect(checkpoint.at).toBe(new Date(clock.now()).toISOString());
  });

  it("writes one after the interval when fewer than N records came, and its files sort oldest first", async () => {
    await check(sidecar, 6);
    sidecar.bulkhead.decisionLog.flush();
    expect(tick()).toBeNull();
    clock.advance(HOUR + MINUTE);
    expect(tick()).not.toBeNull();
    const files = checkpointFiles(dir);
    const records = files.map((f) => (JSON.parse(readFileSync(join(dir, f), "utf8")) as { chains: { decision_log: { records: number } } }).chains.decision_log.records);
    expect(records).toEqual([1, 6, 7]);
  });

  it("verifies against the newest checkpoint in the directory, and finds a cut tail and a forged checkpoint", () => {
    sidecar.bulkhead.db.pragma("wal_checkpoint(TRUNCATE)");
    const intact = join(work, "intact.db");
    copyFileSync(sidecar.bulkhead.config.dbPath, intact);
    const ok = bulkhead("audit", "verify", "--db", intact, "--checkpoint", dir, "--public-key", pubFile);
    expect(ok.status, ok.out).toBe(0);
    expect(ok.out).toContain("note using the newest checkpoint");
    expect(ok.out).toContain("signature verified");

    const cut = join(work, "cut.db");
    copyFileSync(intact, cut);
    const db = new Database(cut);
    db.prepare("DELETE FROM decision_log WHERE rowid = (SELECT max(rowid) FROM decision_log)").run();
    db.close();
    expect(bulkhead("audit", "verify", "--db", cut).status, "the chain alone cannot see a cut tail").toBe(0);
    const found = bulkhead("audit", "verify", "--db", cut, "--checkpoint", dir, "--public-key", pubFile);
    expect(found.status).toBe(1);
    expect(found.out).toMatch(/the checkpoint commits to decision_log rowid 7 .* which is gone/);

    const newest = join(dir, checkpointFiles(dir).at(-1)!);
    const forged = JSON.parse(readFileSync(newest, "utf8")) as { chains: { decision_log: { rowId: number } } };
    forged.chains.decision_log.rowId = 6;
    const forgedFile = join(work, "forged.json");
    writeFileSync(forgedFile, JSON.stringify(forged));
    const rejected = bulkhead("audit", "verify", "--db", cut, "--checkpoint", forgedFile, "--public-key", pubFile);
    expect(rejected.status).toBe(1);
    expect(rejected.out).toContain("signature does not match its contents");
  });

  it("writes them by its own timer too", async () => {
    const own = join(work, "timer-checkpoints");
    const other = await startSidecar({ runtime: { clock: testClock() }, config: { auditCheckpoints: { keyFile, dir: own, everyRecords: 2, intervalSeconds: 3600 } } });
    try {
      for (let i = 0; i < 3; i++) await check(other, i);
      other.bulkhead.decisionLog.flush();
      for (let i = 0; i < 100 && checkpointFiles(own).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(checkpointFiles(own).length).toBeGreaterThan(0);
    } finally {
      await other.close();
    }
  });
});

describe("two processes on one file", () => {
  it("write one checkpoint between them for one due point", () => {
    const path = join(work, "shared.db");
    const clock = testClock();
    const writerDb = openDatabase(path);
    const log = new DecisionLog(writerDb, { journal: null, maxBuffered: 100 });
    for (let i = 0; i < 10; i++) {
      log.record({
        decisionId: `dec_${i}`, at: TEST_START + i, tenantId: "ten_acme", actorId: "usr_alice", actorType: "user", action: "projects.read", resourceType: "project",
        resourceId: "prj_1", resourceTenantId: "ten_acme", allow: true, reasons: [], policyRevision: "p1", storeRevision: 1, requestId: `req_${i}`, source: "test", impersonation: null,
      });
    }
    log.close();
    const dir = join(work, "shared-checkpoints");
    const settings = { privateKeyPem: readFileSync(keyFile, "utf8"), dir, everyRecords: 5, intervalMs: HOUR };
    // Two connections to the file, as two --workers processes have.
    const [a, b] = [openDatabase(path), openDatabase(path)].map((db) => new AutoCheckpoints({ db, clock, settings, log: () => {} }));
    const written = [a!.tick(), b!.tick()].filter((f) => f !== null);
    expect(written).toHaveLength(1);
    expect(checkpointFiles(dir)).toHaveLength(1);
    writerDb.close();
  });
});

describe("a checkpoint that cannot be written", () => {
  it("is not recorded as taken: the next tick writes it once the directory is writable again", () => {
    const path = join(work, "unwritable.db");
    const clock = testClock();
    const db = openDatabase(path);
    const log = new DecisionLog(db, { journal: null, maxBuffered: 100 });
    log.record({
      decisionId: "dec_1", at: TEST_START, tenantId: "ten_acme", actorId: "usr_alice", actorType: "user", action: "projects.read", resourceType: "project",
      resourceId: "prj_1", resourceTenantId: "ten_acme", allow: true, reasons: [], policyRevision: "p1", storeRevision: 1, requestId: "req_1", source: "test", impersonation: null,
    });
    log.flush();
    const dir = join(work, "unwritable-checkpoints");
    const messages: string[] = [];
    const checkpoints = new AutoCheckpoints({ db, clock, settings: { privateKeyPem: readFileSync(keyFile, "utf8"), dir, everyRecords: 5, intervalMs: HOUR }, log: (m) => messages.push(m) });
    // A directory where the temporary file should go makes the write fail, for root too (chmod would not).
    const due = new Date(clock.now()).toISOString().replace(/[-:.]/g, "");
    const blocker = join(dir, `checkpoint-${due}-${"1".padStart(15, "0")}.json.tmp`);
    mkdirSync(blocker);
    expect(checkpoints.tick()).toBeNull();
    expect(messages.join("\n")).toMatch(/audit checkpoint not written/);
    rmdirSync(blocker);
    const file = checkpoints.tick();
    expect(file, "still due: the failed one was released").not.toBeNull();
    expect(checkpointFiles(dir)).toHaveLength(1);
    log.close();
    db.close();
  });
});

describe("configuration", () => {
  it("fails the start on a missing or wrong key, and refuses checkpoint settings without a key", async () => {
    await expect(startSidecar({ config: { auditCheckpoints: { keyFile: join(work, "absent.key"), dir: join(work, "x"), everyRecords: 5, intervalSeconds: 60 } } })).rejects.toThrow(
      /BULKHEAD_AUDIT_CHECKPOINT_KEY=.*absent\.key/,
    );
    const notAKey = join(work, "not-a-key.pem");
    writeFileSync(notAKey, "hello\n");
    await expect(startSidecar({ config: { auditCheckpoints: { keyFile: notAKey, dir: join(work, "y"), everyRecords: 5, intervalSeconds: 60 } } })).rejects.toThrow(/BULKHEAD_AUDIT_CHECKPOINT_KEY/);
    expect(() => loadConfig({ BULKHEAD_AUDIT_CHECKPOINT_DIR: join(work, "z") }, {})).toThrow(ConfigError);
    expect(() => loadConfig({ BULKHEAD_AUDIT_CHECKPOINT_DIR: join(work, "z") }, {})).toThrow(/BULKHEAD_AUDIT_CHECKPOINT_DIR is set but BULKHEAD_AUDIT_CHECKPOINT_KEY is not/);
  });
});
