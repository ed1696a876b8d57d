import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminAuth, type AdminCall } from "../support/admin-client.js";
import { startReplicatedSidecars } from "../support/replicated-sidecars.js";
import type { TestSidecar } from "../support/sidecar.js";
import { MINUTE, testClock } from "../support/test-time.js";

// Break-glass is a command (ADR 54 on ADR 76): a grant opened on one sidecar
// is spent on another, once, and the trail (open, used, expired) is the same
// rows on every sidecar. Two real sidecars on a real three-node JetStream cluster.
const STREAM = "BULKHEAD_BREAK_GLASS";
const clock = testClock();
let sidecars: TestSidecar[] = [];
let admins: AdminCall[] = [];
let closeAll = async () => {};
const staff: Record<string, string> = {};
const as = (who: string) => adminAuth(staff[who]!, "");
const [A, B] = [0, 1];
const JUSTIFICATION = "SSO outage: carol locked out of every tenant, nobody else on call";
const carol = (displayName: string) => ({ userId: "usr_carol", email: "carol@globex.example", displayName });
const settle = async () => {
  await sidecars[A]!.bulkhead.replication!.catchUp();
  for (const s of sidecars) await s.bulkhead.replication!.catchUp();
};
const trailOf = (s: TestSidecar) =>
  s.bulkhead.db.prepare("SELECT at, actor, action, object, reason, source FROM admin_audit WHERE action LIKE 'break_glass.%' ORDER BY id").all();

beforeAll(async () => {
  ({ sidecars, admins, close: closeAll } = await startReplicatedSidecars({ clock, stream: STREAM, count: 2 }));
  for (const [id, role] of [["stf_admin", "support_admin"], ["stf_admin2", "support_admin"]] as const) {
    staff[id] = (await admins[A]!<{ token: string }>("putStaff", { staffId: id, name: id, role, reason: "onboarding: new hire" })).token;
  }
  await settle();
}, 120_000);
afterAll(() => closeAll());

describe("break-glass across sidecars", () => {
  it("a grant opened on A is used on B once; a second use on A and another staff member on B are refused; the trail is the same on both", async () => {
    const grant = await admins[A]!<{ approvalId: string; storeRevision: number }>(
      "breakGlass", { putUser: carol("Carol (restored)"), reason: "incident: INC-42", justification: JUSTIFICATION }, as("stf_admin"));
    expect(Number(grant.storeRevision)).toBeGreaterThan(0);
    await settle();
    const put = (on: number, who: string, name = "Carol (restored)") =>
      admins[on]!("putUser", { tenantId: "ten_acme", ...carol(name), allTenants: true, approvalId: grant.approvalId, reason: "incident" }, as(who));
    const other = await put(B, "stf_admin2").catch((e: ServiceError) => e);
    expect((other as ServiceError).details).toContain("opened by someone else");
    await put(B, "stf_admin");
    await settle();
    for (const s of sidecars) expect(s.bulkhead.stores.directory.user("usr_carol")!.displayName).toBe("Carol (restored)");
    // (The same content again is a no-op that spends nothing; any other change finds the grant spent.)
    const again = await put(A, "stf_admin", "Carol (again)").catch((e: ServiceError) => e);
    expect((again as ServiceError).details).toContain("already used");
    const trail = trailOf(sidecars[A]!);
    expect(trail.map((r) => (r as { action: string }).action)).toEqual(["break_glass.open", "break_glass.used"]);
    expect(trailOf(sidecars[B]!)).toEqual(trail);
  });

  it("expiry is recorded once for the cluster, even when both sidecars sweep", async () => {
    const grant = await admins[B]!<{ approvalId: string }>("breakGlass", { putUser: carol("Carol (late)"), reason: "incident", justification: JUSTIFICATION, ttlSeconds: 60 }, as("stf_admin"));
    await settle();
    clock.advance(2 * MINUTE);
    await Promise.all(sidecars.map((s) => s.bulkhead.expireBreakGlass()));
    await settle();
    for (const s of sidecars) {
      const expired = trailOf(s).filter((r) => (r as { action: string; object: string }).action === "break_glass.expired");
      expect(expired).toEqual([expect.objectContaining({ object: `break_glass:${grant.approvalId}`, actor: "system:break_glass" })]);
    }
    expect(trailOf(sidecars[B]!)).toEqual(trailOf(sidecars[A]!));
  });
});
