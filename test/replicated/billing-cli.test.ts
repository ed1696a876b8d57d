import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../src/paths.js";
import { readRevision } from "../../src/store/revision-writer.js";
import { startStripeMock } from "../support/processes.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import { checkRequest, TEST_ADMIN_TOKEN, TEST_SYNC_TOKEN, TEST_WEBHOOK_SECRET, type TestSidecar } from "../support/sidecar.js";
import { deliver, event, sign, subscriptionObject } from "../support/stripe-events.js";
import { epochSeconds, MINUTE, testClock } from "../support/test-time.js";

// `bulkhead billing` over AdminService (ADR 84) on three real sidecars over a
// real three-node JetStream cluster, reconciling against a real stripe-mock.
// The CLI is the compiled binary with an operator's shell (no BULKHEAD_* of
// the sidecars'), pointed at one sidecar with --addr and --token-file: what
// it does there is a command, seen on every other sidecar.
const clock = testClock();
// stripe-mock's one subscription (Stripe's fixture): active, for this customer.
const MOCK_SUBSCRIPTION = "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw";
const MOCK_CUSTOMER = "cus_QXg1o8vcGmoR32";
const [A, B, C] = [0, 1, 2];
let sidecars: TestSidecar[] = [];
let mock: { url: string; stop: () => void };
let closeAll = async () => {};
let dir: string;
const tokenFile = (name: string) => join(dir, `${name}.token`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "bulkhead-billing-cli-"));
  writeFileSync(tokenFile("bootstrap"), `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
  writeFileSync(tokenFile("sync"), TEST_SYNC_TOKEN, { mode: 0o600 });
  writeFileSync(tokenFile("wrong"), "not-a-token-any-sidecar-knows", { mode: 0o600 });
  mock = await startStripeMock();
  ({ sidecars, close: closeAll } = await startReplicatedSidecars({
    clock, stream: "BULKHEAD_BILLING_CLI", config: { stripeApiKey: "sk_test_123", stripeApiUrl: mock.url },
  }));
}, 120_000);

afterAll(async () => {
  await closeAll();
  mock?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The compiled CLI against one sidecar, with a token file; no BULKHEAD_* from this process. */
async function billing(on: number, args: string[], token = "bootstrap"): Promise<{ code: number; stdout: string; stderr: string }> {
  const shell = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("BULKHEAD_")));
  const cli = [join(PACKAGE_ROOT, "dist", "src", "cli", "main.js"), "billing", ...args, "--addr", sidecars[on]!.grpcAddress, "--token-file", tokenFile(token), "--as", "usr_ops"];
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, cli, { env: shell });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const caughtUp = async () => {
  for (const s of sidecars) await s.bulkhead.replication!.catchUp();
};
const revisions = () => sidecars.map((s) => readRevision(s.bulkhead.db));
const auditRows = (s: TestSidecar, action: string) =>
  s.bulkhead.db.prepare("SELECT actor, tenant_id, object, reason FROM admin_audit WHERE action = ? ORDER BY rowid").all(action);
const billingStatus = (s: TestSidecar) => s.bulkhead.db.prepare("SELECT billing_status FROM tenants WHERE id = 'ten_globex'").pluck().get();
/** A Check on `s` that waits until `s` has applied `revision`: read-your-writes from another sidecar. */
const readAt = (s: TestSidecar, revision: number) => s.check(checkRequest("ten_globex", "usr_carol", "projects.read", "ten_globex", { minRevision: revision }));
const revisionIn = (stdout: string) => Number(/revision (\d+)/.exec(stdout)?.[1]);

describe("bulkhead billing against three replicated sidecars", () => {
  it("reconcile via A prints the drift and writes nothing; --apply via A repairs it, seen on C at the printed revision", async () => {
    const object = subscriptionObject({ id: MOCK_SUBSCRIPTION, customer: MOCK_CUSTOMER, status: "past_due", plan: "pro", tenantId: "ten_globex" });
    const payload = event("evt_cli_past_due", "customer.subscription.updated", object, epochSeconds(clock.now() - MINUTE));
    expect((await deliver(sidecars[A]!.httpPort, payload, sign(payload, TEST_WEBHOOK_SECRET, epochSeconds(clock.now())))).body.outcome).toBe("applied");
    await caughtUp();
    const before = revisions();

    const dry = await billing(A, ["reconcile", "--reason", "billing_correction: check drift"]);
    expect(dry.stderr).toBe("");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`${MOCK_SUBSCRIPTION} (ten_globex): status: "past_due" -> "active"`);
    expect(dry.stdout).toContain("1 subscriptions checked, 1 drifted, dry run: nothing written");
    await caughtUp();
    expect(revisions()).toEqual(before);
    for (const s of sidecars) expect(auditRows(s, "billing.reconcile")).toEqual([]);

    const applied = await billing(A, ["reconcile", "--apply", "--reason", "billing_correction: repair drift"]);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain(`repaired at revision ${before[A]! + 1}`);
    const revision = revisionIn(applied.stdout);
    expect((await readAt(sidecars[C]!, revision)).storeRevision).toBeGreaterThanOrEqual(revision);
    expect(billingStatus(sidecars[C]!)).toBe("active");
    expect(auditRows(sidecars[C]!, "billing.reconcile")).toEqual([
      { actor: "bootstrap:usr_ops", tenant_id: "ten_globex", object: `subscription:${MOCK_SUBSCRIPTION}`, reason: "billing_correction: repair drift" },
    ]);
  });

  it("replay via A is one command seen on C at the printed revision; recalculate via B and events via C follow", async () => {
    await caughtUp();
    const before = revisions();
    const replayed = await billing(A, ["replay", "evt_cli_past_due", "--reason", "billing_correction: replay"]);
    expect(replayed.code).toBe(0);
    // Older than the reconcile's watermark: a replay never rolls state back.
    expect(replayed.stdout.trim()).toBe(`evt_cli_past_due: stale for ten_globex at revision ${before[A]! + 1}`);
    await readAt(sidecars[C]!, before[A]! + 1);
    expect(auditRows(sidecars[C]!, "billing.replay")).toEqual([
      { actor: "bootstrap:usr_ops", tenant_id: "ten_globex", object: "billing_event:evt_cli_past_due", reason: "billing_correction: replay" },
    ]);
    expect(billingStatus(sidecars[C]!)).toBe("active");

    const recalculated = await billing(B, ["recalculate", "--tenant-id", "ten_globex", "--reason", "billing_correction: recalc"]);
    expect(recalculated.code).toBe(0);
    expect(recalculated.stdout).toMatch(/^ten_globex: (recalculated|unchanged) at revision \d+\n$/);
    await readAt(sidecars[C]!, revisionIn(recalculated.stdout));
    expect(auditRows(sidecars[C]!, "billing.recalculate")).toHaveLength(1);

    const events = await billing(C, ["events", "--tenant-id", "ten_globex"]);
    expect(events.code).toBe(0);
    expect(events.stdout.split("\n").filter(Boolean).map((l) => l.split("\t").slice(0, 3))).toEqual([
      ["evt_cli_past_due", "customer.subscription.updated", "applied"],
    ]);
  });

  it("a caller without billing.write (the directory sync token) is refused on every write and dry run; nothing is appended anywhere", async () => {
    await caughtUp();
    const before = revisions();
    const audits = sidecars.map((s) => s.bulkhead.db.prepare("SELECT count(*) FROM admin_audit").pluck().get());
    for (const args of [
      ["replay", "evt_cli_past_due", "--reason", "billing_correction"],
      ["reconcile", "--apply", "--reason", "billing_correction"],
      ["reconcile", "--reason", "billing_correction"],
      ["recalculate", "--tenant-id", "ten_globex", "--reason", "billing_correction"],
    ]) {
      const refused = await billing(B, args, "sync");
      expect(refused.code, args.join(" ")).toBe(1);
      expect(refused.stderr, args.join(" ")).toContain("billing.write");
      expect(refused.stdout).toBe("");
    }
    await caughtUp();
    expect(revisions()).toEqual(before);
    expect(sidecars.map((s) => s.bulkhead.db.prepare("SELECT count(*) FROM admin_audit").pluck().get())).toEqual(audits);
  });

  it("a wrong token is refused before anything is appended; a wrong reason code or event id names the field", async () => {
    await caughtUp();
    const before = revisions();
    const wrong = await billing(C, ["replay", "evt_cli_past_due", "--reason", "billing_correction"], "wrong");
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^bulkhead billing replay: AdminService needs a .* bearer token\n$/);
    expect(wrong.stderr).not.toContain("not-a-token");

    const badReason = await billing(A, ["replay", "evt_cli_past_due", "--reason", "because I said so"]);
    expect(badReason.code).toBe(1);
    expect(badReason.stderr).toContain("must start with a reason code");
    expect(badReason.stderr).toContain("(field reason)");
    const noEvent = await billing(A, ["replay", "evt_never_seen", "--reason", "billing_correction"]);
    expect(noEvent.code).toBe(1);
    expect(noEvent.stderr).toContain("no stored billing event evt_never_seen (field event_id)");
    const noReason = await billing(A, ["replay", "evt_cli_past_due"]);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain("--reason is required (field reason)");
    await caughtUp();
    expect(revisions()).toEqual(before);
  });
});
