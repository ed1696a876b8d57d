import { status } from "@grpc/grpc-js";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { codes, startSidecar, TEST_ADMIN_TOKEN, type TestSidecar } from "../support/sidecar.js";
import { TEST_START, testClock } from "../support/test-time.js";

// API-key principals end to end: the key decides tenant, actor and scopes.
const START = TEST_START;
const clock = testClock();
let sidecar: TestSidecar;

beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock } });
});
afterAll(() => sidecar.close());

function createKey(tenantId: string, scopes: string[], extra: { ratePerMinute?: number; expiresAt?: number | null } = {}) {
  return sidecar.bulkhead.writer.write((tx) =>
    sidecar.bulkhead.apiKeys.create(tx, { tenantId, name: "ci", scopes, ratePerMinute: extra.ratePerMinute ?? 600, expiresAt: extra.expiresAt ?? null, createdBy: "test" }),
  ).result;
}

const keyCheck = (apiKey: string, action: string, resourceTenant: string, principal: Record<string, string> = {}) =>
  sidecar.check({ principal: { apiKey, ...principal }, action, resource: { type: "project", id: "p1", tenantId: resourceTenant } });

describe("API keys", () => {
  it("act in their own tenant within their scopes", async () => {
    const { raw, key } = createKey("ten_acme", ["projects.read"]);
    const allowed = await keyCheck(raw, "projects.read", "ten_acme");
    expect(allowed.allow).toBe(true);
    const outOfScope = await keyCheck(raw, "projects.delete", "ten_acme");
    expect(codes(outOfScope)).toEqual(["api_key_scope"]);
    sidecar.bulkhead.decisionLog.flush();
    const row = sidecar.bulkhead.db.prepare("SELECT actor_id, actor_type, tenant_id FROM decision_log WHERE decision_id = ?").get(allowed.decisionId);
    expect(row).toEqual({ actor_id: key.id, actor_type: "api_key", tenant_id: "ten_acme" });
  });

  it("never act in another tenant, whatever tenant the request claims", async () => {
    const { raw } = createKey("ten_acme", ["projects.read"]);
    expect(codes(await keyCheck(raw, "projects.read", "ten_globex"))).toEqual(["wrong_tenant"]);
    expect(codes(await keyCheck(raw, "projects.read", "ten_globex", { tenantId: "ten_globex" }))).toEqual(["wrong_tenant"]);
    expect(codes(await keyCheck(raw, "projects.read", "ten_acme", { tenantSlug: "globex" }))).toEqual(["wrong_tenant"]);
    expect((await keyCheck(raw, "projects.read", "ten_acme", { tenantSlug: "acme" })).allow).toBe(true);
  });

  it("are denied on the very next Check after revocation", async () => {
    const { raw, key } = createKey("ten_acme", ["projects.read"]);
    expect((await keyCheck(raw, "projects.read", "ten_acme")).allow).toBe(true);
    sidecar.bulkhead.writer.write((tx) => sidecar.bulkhead.apiKeys.revoke(tx, "ten_acme", key.id));
    expect(codes(await keyCheck(raw, "projects.read", "ten_acme"))).toEqual(["api_key_invalid"]);
  });

  it("are denied once expired", async () => {
    const { raw } = createKey("ten_acme", ["projects.read"], { expiresAt: START + 60_000 });
    expect((await keyCheck(raw, "projects.read", "ten_acme")).allow).toBe(true);
    clock.set(START + 60_000);
    expect(codes(await keyCheck(raw, "projects.read", "ten_acme"))).toEqual(["api_key_invalid"]);
    clock.set(START);
  });

  it("keep the old key working for the rotation overlap, then only the new one", async () => {
    const old = createKey("ten_acme", ["projects.read"]);
    const minted = sidecar.bulkhead.apiKeys.mint(clock.now());
    sidecar.bulkhead.writer.write((tx) => sidecar.bulkhead.apiKeys.rotate(tx, old.key.id, 30_000, "test", minted));
    const next = { raw: minted.raw };
    expect((await keyCheck(old.raw, "projects.read", "ten_acme")).allow).toBe(true);
    expect((await keyCheck(next.raw, "projects.read", "ten_acme")).allow).toBe(true);
    clock.set(START + 30_000);
    expect(codes(await keyCheck(old.raw, "projects.read", "ten_acme"))).toEqual(["api_key_invalid"]);
    expect((await keyCheck(next.raw, "projects.read", "ten_acme")).allow).toBe(true);
    clock.set(START);
  });

  it("are rate limited per key with a token bucket", async () => {
    const { raw } = createKey("ten_acme", ["projects.read"], { ratePerMinute: 5 });
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await keyCheck(raw, "projects.read", "ten_acme"));
    expect(answers.slice(0, 5).every((a) => a.allow)).toBe(true);
    expect(codes(answers[5]!)).toEqual(["rate_limited"]);
    clock.advance(12_000); // one token back
    expect((await keyCheck(raw, "projects.read", "ten_acme")).allow).toBe(true);
    clock.set(START);
  });

  it("refuse a right key id with a wrong secret, and a malformed key", async () => {
    const { raw } = createKey("ten_acme", ["projects.read"]);
    const forged = raw.slice(0, -4) + (raw.endsWith("AAAA") ? "BBBB" : "AAAA");
    expect(codes(await keyCheck(forged, "projects.read", "ten_acme"))).toEqual(["api_key_invalid"]);
    const error = await keyCheck("sk_live_not_ours", "projects.read", "ten_acme").catch((e) => e);
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.metadata.get("bulkhead-field")).toEqual(["principal.api_key"]);
  });

  it("store only a keyed hash, never the secret", () => {
    const { raw, key } = createKey("ten_acme", ["projects.read"]);
    const row = sidecar.bulkhead.db.prepare("SELECT * FROM api_keys WHERE id = ?").get(key.id) as Record<string, unknown>;
    expect(JSON.stringify(row)).not.toContain(raw.split(".")[1]);
    expect(row.secret_hash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("bulkhead admin (CLI over AdminService)", () => {
  const cli = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
  const run = (...args: string[]) =>
    promisify(execFile)(process.execPath, [cli, "admin", ...args, "--addr", sidecar.grpcAddress, "--token", TEST_ADMIN_TOKEN, "--as", "usr_ops"]);

  it("creates a key shown once, audited, that the running sidecar accepts", async () => {
    const { stdout } = await run("create-api-key", "--tenant-id", "ten_globex", "--scopes", "projects.read", "--name", "etl", "--reason", "customer_request: ticket-42");
    const created = JSON.parse(stdout) as { api_key: string; key_id: string };
    expect((await keyCheck(created.api_key, "projects.read", "ten_globex")).allow).toBe(true);
    const audit = sidecar.bulkhead.db.prepare("SELECT actor, action, tenant_id, reason FROM admin_audit WHERE action = 'api_key.create' ORDER BY id DESC").get();
    expect(audit).toEqual({ actor: "bootstrap:usr_ops", action: "api_key.create", tenant_id: "ten_globex", reason: "customer_request: ticket-42" });
  });

  it("reports the wrong field and exits 1 when the API refuses, 2 on a usage error", async () => {
    const missingReason = await run("create-api-key", "--tenant-id", "ten_globex", "--scopes", "projects.read", "--name", "x").catch((e) => e);
    expect(missingReason.code).toBe(1);
    expect(missingReason.stderr).toContain("(field reason)");
    const unknownFlag = await run("create-api-key", "--tenant", "ten_globex").catch((e) => e);
    expect(unknownFlag.code).toBe(2);
    expect(unknownFlag.stderr).toContain("unknown flag --tenant");
    const help = await promisify(execFile)(process.execPath, [cli, "admin", "put-plan", "--help"]);
    expect(help.stdout).toContain("--all-tenants");
    expect(help.stdout).toContain("--approval-id");
  });
});
