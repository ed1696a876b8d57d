import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { beforeAll, describe, expect, it } from "vitest";
import { AdminAudit } from "../../src/audit/admin-audit.js";
import { chainHash, chainValues } from "../../src/audit/audit-chain.js";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { startSidecar } from "../support/sidecar.js";

// The tamper-evident audit trail (issue 17, ADR 66): a real sidecar writes
// decisions and admin actions, then each test tampers with a copy of its
// SQLite file the way someone with file access would, and runs the built
// CLI (`bulkhead audit verify|checkpoint|export`) against it.
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "bulkhead-audit-chain-"));
let original: string;
let acmeDecisions: string[];
let globexDecisions: string[];

function bulkhead(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A copy of the store with `tamper` applied through a plain SQLite connection. */
function tampered(name: string, tamper: (db: Database.Database) => void = () => {}): string {
  const path = join(work, `${name}.db`);
  copyFileSync(original, path);
  const db = new Database(path);
  tamper(db);
  db.close();
  return path;
}

beforeAll(async () => {
  const sidecar = await startSidecar({ demo: true });
  acmeDecisions = [];
  globexDecisions = [];
  for (let i = 0; i < 6; i++) {
    const acme = await sidecar.check({ principal: { tenantId: "ten_acme", actorId: "usr_alice" }, action: "projects.read", resource: { type: "project", id: `prj_${i}`, tenantId: "ten_acme" } });
    acmeDecisions.push(acme.decisionId);
    const globex = await sidecar.check({ principal: { tenantId: "ten_globex", actorId: "usr_carol" }, action: "projects.read", resource: { type: "project", id: `prj_g${i}`, tenantId: "ten_globex" } });
    globexDecisions.push(globex.decisionId);
  }
  const audit = new AdminAudit(sidecar.bulkhead.db);
  for (const tenantId of ["ten_acme", "ten_globex", "ten_acme"]) {
    sidecar.bulkhead.writer.write((tx) => audit.record(tx, { actor: "staff_ops", tenantId, object: `tenant:${tenantId}`, action: "PutTenant", reason: "support_request: test", source: "admin", result: "ok" }));
  }
  sidecar.bulkhead.decisionLog.flush();
  // Everything into the main file, then a copy each test can tamper with.
  sidecar.bulkhead.db.pragma("wal_checkpoint(TRUNCATE)");
  original = join(work, "base.db");
  copyFileSync(sidecar.bulkhead.config.dbPath, original);
  await sidecar.close();
});

describe("bulkhead audit verify", () => {
  it("passes an untouched store", () => {
    const result = bulkhead("audit", "verify", "--db", tampered("intact"));
    expect(result.status, result.out).toBe(0);
    expect(result.out).toMatch(/ok {3}decision_log: 12 records verified/);
    expect(result.out).toMatch(/ok {3}admin_audit: 3 records verified/);
  });

  it("names a modified decision", () => {
    const result = bulkhead("audit", "verify", "--db", tampered("modified", (db) => db.prepare("UPDATE decision_log SET allow = 0 WHERE rowid = 5").run()));
    expect(result.status).toBe(1);
    expect(result.out).toMatch(/FAIL decision_log: decision_log rowid 5 \(decision \w+\) does not match the chain: its contents were changed/);
  });

  it("names the record after a deleted one", () => {
    const result = bulkhead("audit", "verify", "--db", tampered("deleted", (db) => db.prepare("DELETE FROM decision_log WHERE rowid = 5").run()));
    expect(result.status).toBe(1);
    expect(result.out).toContain("decision_log rowid 6");
    expect(result.out).toContain("rows 5..5 before it were deleted");
  });

  it("names an inserted record even when its own hash was computed correctly", () => {
    const path = tampered("inserted", (db) => {
      const previous = db.prepare("SELECT * FROM decision_log WHERE rowid = 5").get() as Record<string, unknown>;
      const forged: Record<string, unknown> = { ...previous, decision_id: "forged", allow: 1, reasons: "[]" };
      db.prepare("UPDATE decision_log SET rowid = rowid + 1000 WHERE rowid > 5").run();
      const columns = Object.keys(forged).filter((c) => c !== "chain_hash");
      db.prepare(`INSERT INTO decision_log (rowid, ${columns.join(", ")}, chain_hash) VALUES (6, ${columns.map(() => "?").join(", ")}, ?)`).run(
        ...columns.map((c) => forged[c]),
        chainHash(previous.chain_hash as string, chainValues("decision_log", forged)),
      );
      db.prepare("UPDATE decision_log SET rowid = rowid - 999 WHERE rowid > 1000").run();
    });
    const result = bulkhead("audit", "verify", "--db", path);
    expect(result.status).toBe(1);
    expect(result.out).toContain("decision_log rowid 7");
    expect(result.out).toContain("the record before it (rowid 6) was inserted");
  });

  it("names reordered records", () => {
    const path = tampered("reordered", (db) => {
      db.prepare("UPDATE decision_log SET rowid = -1 WHERE rowid = 3").run();
      db.prepare("UPDATE decision_log SET rowid = 3 WHERE rowid = 4").run();
      db.prepare("UPDATE decision_log SET rowid = 4 WHERE rowid = -1").run();
    });
    const result = bulkhead("audit", "verify", "--db", path);
    expect(result.status).toBe(1);
    expect(result.out).toContain("FAIL decision_log: decision_log rowid 3");
  });

  it("names a changed admin action", () => {
    const result = bulkhead("audit", "verify", "--db", tampered("admin", (db) => db.prepare("UPDATE admin_audit SET reason = 'nothing to see' WHERE id = 2").run()));
    expect(result.status).toBe(1);
    expect(result.out).toMatch(/FAIL admin_audit: admin_audit id 2 \(PutTenant by staff_ops\)/);
    expect(result.out).toMatch(/ok {3}decision_log/);
  });

  it("finds a truncated tail against a signed checkpoint taken before, and checks the signature", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const keyFile = join(work, "audit.key");
    const pubFile = join(work, "audit.pub");
    writeFileSync(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(pubFile, publicKey.export({ type: "spki", format: "pem" }));
    const checkpointFile = join(work, "checkpoint.json");
    expect(bulkhead("audit", "checkpoint", "--db", tampered("for-checkpoint"), "--key", keyFile, "--out", checkpointFile).status).toBe(0);

    const truncated = tampered("truncated", (db) => db.prepare("DELETE FROM decision_log WHERE rowid > 10").run());
    expect(bulkhead("audit", "verify", "--db", truncated).status, "a chain alone cannot see a cut tail").toBe(0);
    const result = bulkhead("audit", "verify", "--db", truncated, "--checkpoint", checkpointFile, "--public-key", pubFile);
    expect(result.status).toBe(1);
    expect(result.out).toContain("signature verified");
    expect(result.out).toMatch(/the checkpoint commits to decision_log rowid 12 .* which is gone: the chain ends at rowid 10/);

    const forgedCheckpoint = join(work, "forged-checkpoint.json");
    const checkpoint = JSON.parse(readFileSync(checkpointFile, "utf8")) as { chains: { decision_log: { rowId: number } } };
    checkpoint.chains.decision_log.rowId = 10;
    writeFileSync(forgedCheckpoint, JSON.stringify(checkpoint));
    const forged = bulkhead("audit", "verify", "--db", truncated, "--checkpoint", forgedCheckpoint, "--public-key", pubFile);
    expect(forged.status).toBe(1);
    expect(forged.out).toContain("signature does not match its contents");
  });
});

describe("bulkhead audit export", () => {
  it("gives one tenant's records only, although the tenants' rows interleave", () => {
    const result = bulkhead("audit", "export", "--db", tampered("export"), "--tenant", "ten_acme");
    expect(result.status, result.out).toBe(0);
    const lines = result.out.trim().split("\n").map((l) => JSON.parse(l) as { kind: string; tenant_id: string; decision_id?: string });
    expect(lines.filter((l) => l.kind === "decision").map((l) => l.decision_id).sort()).toEqual([...acmeDecisions].sort());
    expect(lines.filter((l) => l.kind === "admin_action")).toHaveLength(2);
    expect(lines.every((l) => l.tenant_id === "ten_acme")).toBe(true);
    for (const id of globexDecisions) expect(result.out).not.toContain(id);
    expect(result.out).not.toContain("ten_globex");
  });

  it("refuses an export without a tenant or with a bad time, naming the flag", () => {
    const noTenant = bulkhead("audit", "export", "--db", tampered("export-usage"));
    expect(noTenant.status).toBe(2);
    expect(noTenant.out).toContain("--tenant is required");
    const badTime = bulkhead("audit", "export", "--db", tampered("export-usage"), "--tenant", "ten_acme", "--since", "last tuesday");
    expect(badTime.status).toBe(2);
    expect(badTime.out).toContain("--since: 'last tuesday' is not an ISO 8601 time");
  });
});
