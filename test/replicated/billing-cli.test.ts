import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { isReplicaView, markReplicaView } from "../../src/replication/replica-mark.js";
import { openDatabase } from "../../src/store/database.js";
import { readRevision } from "../../src/store/revision-writer.js";
import { adminClient, type AdminCall } from "../support/admin-client.js";
import { startNatsCluster, type NatsCluster } from "../support/nats-cluster.js";
import { startStripeMock } from "../support/processes.js";
import { startSidecar, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliver, event, sign, subscriptionObject } from "../support/stripe-events.js";
import { epochSeconds, testClock } from "../support/test-time.js";

// `bulkhead billing replay` and `reconcile` write the SQLite file directly,
// not through the change log. On a replicated sidecar's file that write would
// reach no other sidecar and take the revision the log gives its next entry,
// so they are refused there, whether or not the operator's shell has
// BULKHEAD_NATS_URL. A real sidecar on a real three-node JetStream cluster
// owns the file; the CLI is the compiled binary, as an operator runs it.
const clock = testClock();
let cluster: NatsCluster;
let sidecar: TestSidecar;
let admin: AdminCall;
let mock: { url: string; stop: () => void };
const closers: (() => void)[] = [];

beforeAll(async () => {
  [cluster, mock] = await Promise.all([startNatsCluster(3), startStripeMock()]);
  const replication = { natsServers: cluster.urls(), stream: "BULKHEAD_BILLING_CLI", stalenessMs: 5_000, replicas: 3 };
  sidecar = await startSidecar({ demo: true, config: { replication }, runtime: { clock } });
  const { client, call } = adminClient(sidecar.grpcAddress);
  closers.push(() => client.close());
  admin = call;
}, 120_000);

afterAll(async () => {
  for (const close of closers) close();
  mock?.stop();
  await sidecar?.close().catch(() => {});
  await cluster?.stop();
});

/** The compiled CLI with an operator's shell: no BULKHEAD_* of the sidecar's unless given. */
async function billing(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const shell = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("BULKHEAD_")));
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "billing", ...args], {
      env: { ...shell, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const auditRows = (action: string) =>
  sidecar.bulkhead.db.prepare("SELECT count(*) FROM admin_audit WHERE action = ?").pluck().get(action) as number;

describe("billing replay and reconcile on a replicated sidecar's file", () => {
  it("replay of a stored event is refused, naming the mode and what to do; nothing is written and the sidecar keeps applying the log", async () => {
    // An event for a customer no tenant has: stored as unmapped, the case replay exists for.
    const now = epochSeconds(clock.now());
    const payload = event("evt_cli_unmapped", "customer.subscription.created", subscriptionObject({ id: "sub_cli", customer: "cus_cli_nobody", status: "active", plan: "pro" }), now);
    const stored = await deliver(sidecar.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, now));
    expect(stored.body.outcome).toBe("unmapped");
    expect(isReplicaView(sidecar.bulkhead.db)).toBe(true);
    const before = readRevision(sidecar.bulkhead.db);

    const dbPath = sidecar.bulkhead.config.dbPath;
    const refused = await billing(["replay", "evt_cli_unmapped", "--reason", "billing_correction: mapped late", "--db", dbPath]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("refused in replicated mode");
    expect(refused.stderr).toContain("view of the change log");
    expect(refused.stderr).toContain("metadata.tenant_id");
    expect(readRevision(sidecar.bulkhead.db)).toBe(before);
    expect(auditRows("billing.replay")).toBe(0);

    // The next write through the log is applied here as usual.
    const write = await admin<{ storeRevision: number }>("putMembership", {
      tenantId: "ten_globex", membership: { actorId: "usr_bob", role: "viewer" }, reason: "customer_request: after a refused replay",
    });
    expect(write.storeRevision).toBe(before + 1);
    expect(readRevision(sidecar.bulkhead.db)).toBe(before + 1);
    expect(sidecar.bulkhead.replication!.readiness.ready).toBe(true);
  });

  it("reconcile is refused unless --dry-run, which reads the file and writes nothing", async () => {
    const dbPath = sidecar.bulkhead.config.dbPath;
    const stripe = { BULKHEAD_STRIPE_API_KEY: "sk_test_123", BULKHEAD_STRIPE_API_URL: mock.url };
    const before = readRevision(sidecar.bulkhead.db);
    const refused = await billing(["reconcile", "--db", dbPath], stripe);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("refused in replicated mode");
    expect(refused.stderr).toContain("--dry-run");

    const dry = await billing(["reconcile", "--dry-run", "--db", dbPath], stripe);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/subscriptions checked/);
    expect(readRevision(sidecar.bulkhead.db)).toBe(before);
    expect(auditRows("billing.reconcile")).toBe(0);
  });

  it("BULKHEAD_NATS_URL in the shell refuses them on any file, even one no sidecar marked", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-billing-cli-"));
    try {
      const refused = await billing(["replay", "evt_any", "--reason", "billing_correction", "--db", join(dir, "fresh.db")], {
        BULKHEAD_NATS_URL: cluster.urls().join(","),
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("refused in replicated mode (BULKHEAD_NATS_URL is set)");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("from single-node mode", () => {
  it("a file a single-node sidecar opened after a replicated one is its own again: replay runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-billing-cli-"));
    const dbPath = join(dir, "was-replicated.db");
    try {
      const db = openDatabase(dbPath);
      markReplicaView(db);
      db.close();
      const marked = await billing(["replay", "evt_missing", "--reason", "billing_correction", "--db", dbPath]);
      expect(marked.stderr).toContain("refused in replicated mode");

      const single = await startSidecar({ demo: false, config: { dbPath } });
      await single.close();
      // Past the guard: the projector answers about the event itself.
      const replay = await billing(["replay", "evt_missing", "--reason", "billing_correction", "--db", dbPath]);
      expect(replay.code).toBe(2);
      expect(replay.stderr).toContain("no stored billing event evt_missing");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
