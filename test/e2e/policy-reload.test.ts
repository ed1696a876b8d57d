import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PolicyManager } from "../../src/engine/policy-manager.js";
import { DEFAULT_POLICY_DIR } from "../../src/paths.js";
import { buildVariantBundle, editFile } from "../support/policy-builds.js";
import { checkRequest, codes, startSidecar, type TestSidecar } from "../support/sidecar.js";

// The live server watches its bundle directory. Bundles are published into it
// the way `npm run build:policies` does (three files, manifest last).
const liveDir = mkdtempSync(join(tmpdir(), "bulkhead-live-policy-"));
let sidecar: TestSidecar;
let goodRevision: string;

const publish = (bundleDir: string) => {
  for (const file of ["policy.wasm", "data.json", "bundle.json"]) cpSync(join(bundleDir, file), join(liveDir, file));
};

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}; policy status ${JSON.stringify(sidecar.bulkhead.policies.status)}`);
}

async function health(): Promise<{ status: string; policy: { lastError: string | null } }> {
  const response = await fetch(`http://127.0.0.1:${sidecar.httpPort}/healthz`);
  return (await response.json()) as never;
}

beforeAll(async () => {
  publish(DEFAULT_POLICY_DIR);
  sidecar = await startSidecar({ policyDir: liveDir, config: { watchPolicies: true } });
  goodRevision = sidecar.bulkhead.policies.revision;
});
afterAll(() => sidecar.close());

describe("policy hot reload", () => {
  it("swaps in a valid new bundle without a restart", async () => {
    const viewersMayDelete = buildVariantBundle((src) =>
      editFile(join(src, "bulkhead", "roles", "data.json"), '"viewer": ["projects.read",', '"viewer": ["projects.read", "projects.delete",'),
    );
    const before = await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.delete"));
    expect(before.allow).toBe(false);
    publish(viewersMayDelete);
    await waitFor(() => sidecar.bulkhead.policies.revision !== goodRevision, "the new bundle");
    const after = await sidecar.check(checkRequest("ten_acme", "usr_bob", "projects.delete"));
    expect(after.allow).toBe(true);
    expect(after.policyRevision).not.toBe(before.policyRevision);
    publish(DEFAULT_POLICY_DIR);
    await waitFor(() => sidecar.bulkhead.policies.revision === goodRevision, "the original bundle");
  });

  it("rejects a bundle that would allow a cross-tenant request and keeps serving the last good one", async () => {
    const leaky = buildVariantBundle((src) => {
      editFile(join(src, "bulkhead", "checks.rego"), /resource_tenant\n\tnot same_tenant/, "resource_tenant\n\tfalse");
      editFile(join(src, "bulkhead", "decision.rego"), "\tchecks.same_tenant\n", "");
    });
    publish(leaky);
    await waitFor(() => sidecar.bulkhead.policies.status.state === "degraded", "the rejection");
    expect(sidecar.bulkhead.policies.status.lastError).toContain("a resource of another tenant is denied");
    expect(sidecar.bulkhead.policies.revision).toBe(goodRevision);
    const response = await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"));
    expect(codes(response)).toEqual(["wrong_tenant"]);
    expect(response.policyRevision).toBe(goodRevision);
    expect((await health()).status).toBe("degraded");
    const metrics = await (await fetch(`http://127.0.0.1:${sidecar.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^bulkhead_policy_degraded 1$/m);
  });

  it("rejects a bundle whose Wasm needs a builtin the host lacks", async () => {
    const needsHttp = buildVariantBundle((src) =>
      writeFileSync(
        join(src, "bulkhead", "decision.rego"),
        'package bulkhead.decision\n\nimport data.bulkhead.checks\n\ndefault allow := false\n\n' +
          'reasons := checks.reasons if http.send({"method": "get", "url": "http://127.0.0.1:9"}).status_code == 200\n',
      ),
    );
    publish(needsHttp);
    await waitFor(() => sidecar.bulkhead.policies.status.lastError?.includes("http.send") ?? false, "the builtin check");
    expect(sidecar.bulkhead.policies.status.lastError).toContain("builtins this host does not provide: http.send");
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);
  });

  it("fails a Check closed with INTERNAL when the policy traps at evaluation", async () => {
    // Conflicting values for one complete rule abort the Wasm, but only for an
    // action no earlier Check here asked, so the bundle passes its smoke cases
    // and the replay of recent inputs, and loads (policy-guard.test.ts covers
    // a trap the replay catches and one the watchdog rolls back).
    const traps = buildVariantBundle((src) => {
      editFile(
        join(src, "bulkhead", "checks.rego"),
        "reason(code, message, details) :=",
        'trap := 1 if input.action == "reports.export"\n\ntrap := 2 if input.action == "reports.export"\n\n' +
          "reason(code, message, details) :=",
      );
      editFile(join(src, "bulkhead", "decision.rego"), "\tchecks.is_member\n", "\tchecks.is_member\n\tnot checks.trap == 0\n");
    });
    publish(traps);
    await waitFor(() => sidecar.bulkhead.policies.status.state === "ready" && sidecar.bulkhead.policies.revision !== goodRevision, "the trapping bundle");
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);
    const error = await sidecar.check(checkRequest("ten_acme", "usr_alice", "reports.export")).catch((e) => e);
    expect(error.code).toBe(status.INTERNAL);
    expect(error.metadata.get("bulkhead-error-code")).toEqual(["POLICY_EVALUATION_FAILED"]);
    // The same worker keeps answering after a trap.
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);
    publish(DEFAULT_POLICY_DIR);
    await waitFor(() => sidecar.bulkhead.policies.revision === goodRevision, "the original bundle");
  });

  it("rejects a half-published bundle and recovers when the good one returns", async () => {
    writeFileSync(join(liveDir, "policy.wasm"), Buffer.from("not wasm at all"));
    await waitFor(() => sidecar.bulkhead.policies.status.lastError?.includes("bundle.json names revision") ?? false, "the manifest check");
    expect((await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"))).allow).toBe(true);

    publish(DEFAULT_POLICY_DIR);
    await waitFor(() => sidecar.bulkhead.policies.status.state === "ready", "recovery");
    expect((await health()).status).toBe("ok");
  });
});

describe("policy hot reload across deploys that swap the directory", () => {
  // A deploy often publishes a new directory and renames it into place, or
  // flips a symlink; the old inotify watch then never fires again.
  const deploys = mkdtempSync(join(tmpdir(), "bulkhead-deploys-"));
  const release = (name: string, bundleDir: string) => {
    const dir = join(deploys, name);
    mkdirSync(dir);
    for (const file of ["policy.wasm", "data.json", "bundle.json"]) cpSync(join(bundleDir, file), join(dir, file));
    return dir;
  };
  let swapped: TestSidecar;
  let viewersMayDelete: string;
  let goodRev: string;

  beforeAll(async () => {
    viewersMayDelete = buildVariantBundle((src) =>
      editFile(join(src, "bulkhead", "roles", "data.json"), '"viewer": ["projects.read",', '"viewer": ["projects.read", "projects.delete",'),
    );
    symlinkSync(release("v1", DEFAULT_POLICY_DIR), join(deploys, "current"));
    renameSync(release("live-v1", DEFAULT_POLICY_DIR), join(deploys, "live"));
    swapped = await startSidecar({ policyDir: join(deploys, "live"), config: { watchPolicies: true } });
    goodRev = swapped.bulkhead.policies.revision;
  });
  afterAll(() => swapped.close());

  const waitForRevision = async (manager: { revision: string }, differs: boolean, from: string) => {
    for (let i = 0; i < 400 && (manager.revision !== from) !== differs; i++) await new Promise((r) => setTimeout(r, 25));
    expect(manager.revision !== from).toBe(differs);
  };

  it("keeps watching after the directory is deleted and a new one is renamed into its place, twice", async () => {
    const live = join(deploys, "live");
    rmSync(live, { recursive: true });
    renameSync(release("live-v2", viewersMayDelete), live);
    await waitForRevision(swapped.bulkhead.policies, true, goodRev);
    expect((await swapped.check(checkRequest("ten_acme", "usr_bob", "projects.delete"))).allow).toBe(true);
    // The second swap proves the watcher was re-aimed, not just one reload done.
    rmSync(live, { recursive: true });
    renameSync(release("live-v3", DEFAULT_POLICY_DIR), live);
    await waitForRevision(swapped.bulkhead.policies, false, goodRev);
    expect((await swapped.check(checkRequest("ten_acme", "usr_bob", "projects.delete"))).allow).toBe(false);
    // And a plain in-place publish into the new directory still reloads.
    for (const file of ["policy.wasm", "data.json", "bundle.json"]) cpSync(join(viewersMayDelete, file), join(live, file));
    await waitForRevision(swapped.bulkhead.policies, true, goodRev);
  });

  it("follows a symlink that is flipped to another release", async () => {
    const manager = new PolicyManager({ dir: join(deploys, "current"), identityCheckMs: 50, debounceMs: 20 });
    await manager.start();
    try {
      const before = manager.revision;
      const next = join(deploys, "current-next");
      symlinkSync(release("v2", viewersMayDelete), next);
      renameSync(next, join(deploys, "current")); // atomic flip, as `ln -sfn` + `mv -T` does
      await waitForRevision(manager, true, before);
    } finally {
      manager.stop();
    }
  });
});
