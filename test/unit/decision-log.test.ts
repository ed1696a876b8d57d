import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DecisionLog, type DecisionRecord } from "../../src/audit/decision-log.js";
import { openDatabase } from "../../src/store/database.js";

const record = (i: number): DecisionRecord => ({
  decisionId: `dec_${i}`, at: 1, tenantId: "ten_a", actorId: "usr_a", actorType: "user", action: "projects.read",
  resourceType: "project", resourceId: "p", resourceTenantId: "ten_a", allow: true, reasons: [],
  policyRevision: "r", storeRevision: 1, requestId: "", source: "workspace_route", impersonation: null,
});

const db = () => openDatabase(join(mkdtempSync(join(tmpdir(), "bulkhead-log-")), "b.db"));

describe("DecisionLog", () => {
  it("writes buffered records in one flush", () => {
    const database = db();
    const log = new DecisionLog(database, { flushIntervalMs: 60_000 });
    for (let i = 0; i < 5; i++) log.record(record(i));
    expect(log.stats.buffered).toBe(5);
    log.flush();
    expect(log.stats).toMatchObject({ buffered: 0, written: 5, dropped: 0 });
    expect(database.prepare("SELECT count(*) FROM decision_log").pluck().get()).toBe(5);
  });

  it("counts records it has no room for instead of blocking", () => {
    const log = new DecisionLog(db(), { maxBuffered: 3, flushIntervalMs: 60_000 });
    for (let i = 0; i < 10; i++) log.record(record(i));
    expect(log.stats).toMatchObject({ buffered: 3, dropped: 7 });
    log.flush();
  });

  it("counts a failed batch as dropped and keeps accepting records", () => {
    const messages: string[] = [];
    const log = new DecisionLog(db(), { flushIntervalMs: 60_000, log: (m) => messages.push(m) });
    log.record(record(1));
    log.record(record(1)); // duplicate primary key: the batch fails as a whole
    log.flush();
    expect(log.stats).toMatchObject({ written: 0, dropped: 2, flushFailures: 1 });
    expect(messages[0]).toMatch(/dropped 2 records/);
    log.record(record(2));
    log.flush();
    expect(log.stats.written).toBe(1);
  });
});
