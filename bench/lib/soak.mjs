// The soak (opt-in, --soak-minutes M): one sidecar under steady Check load
// for M minutes while the policy bundle is republished every 15 s (hot
// reload, alternating two revisions) and signed Stripe webhooks write to the
// store twice a second, for tenants the load is asking about. Reports RSS
// over time (growth = last fifth vs first fifth after warm-up), reloads seen,
// webhook failures and failed Checks (must be 0).
import { createHash } from "node:crypto";
import { cpSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Stripe from "stripe";
import { ghz, rssMiB, stopServer } from "./load-tools.mjs";

const SECRET = "whsec_bench_soak";
const RELOAD_EVERY_MS = 15_000;
const WEBHOOK_EVERY_MS = 500;
const SAMPLE_EVERY_MS = 5_000;

export async function soak({ minutes, bins, root, policyDir, work, bulkheadServer, files, progress, port }) {
  const dir = join(work, "soak-policies");
  cpSync(policyDir, dir, { recursive: true });
  const bundles = twoRevisions(dir);
  const httpPort = await port();
  const { server, address } = await bulkheadServer({
    cores: null, extraArgs: ["--policy-dir", dir],
    env: { httpPort, BULKHEAD_POLICY_DIR: dir, BULKHEAD_STRIPE_WEBHOOK_SECRETS: SECRET },
  });
  const pid = server.child.pid;
  const rate = 500;
  progress(`soak: ${minutes} min of Check at ${rate}/s, a policy republish every ${RELOAD_EVERY_MS / 1000} s, a webhook every ${WEBHOOK_EVERY_MS} ms`);
  const samples = [];
  const webhooks = { sent: 0, failed: 0 };
  let published = 0;
  const tenants = [...new Set(JSON.parse(readFileSync(files.warm, "utf8")).map((r) => r.principal.tenantId))].slice(0, 50);
  const timers = [
    setInterval(() => samples.push({ at: Date.now(), rssMiB: rssMiB(pid) }), SAMPLE_EVERY_MS),
    setInterval(() => publish(dir, bundles[++published % 2]), RELOAD_EVERY_MS),
    setInterval(() => void webhook(httpPort, tenants, webhooks), WEBHOOK_EVERY_MS),
  ];
  let load;
  try {
    load = await ghz({ bin: bins.ghz, root, address, method: "Check", dataFile: files.warm, concurrency: 16, connections: 2, seconds: minutes * 60, rps: rate });
  } finally {
    timers.forEach(clearInterval);
  }
  const log = server.log();
  await stopServer(server);
  const reloads = (log.match(/policy bundle \S+ loaded \(was/g) ?? []).length;
  const rejected = (log.match(/policy bundle rejected/g) ?? []).length;
  // Growth after warm-up: skip the first minute (or fifth), compare first and last fifths of the rest.
  const steady = samples.slice(Math.max(1, Math.min(12, Math.floor(samples.length / 5))));
  const fifth = Math.max(1, Math.floor(steady.length / 5));
  const mean = (xs) => xs.reduce((a, s) => a + s.rssMiB, 0) / xs.length;
  const early = mean(steady.slice(0, fifth));
  const late = mean(steady.slice(-fifth));
  const growth = (late - early) / early;
  const result = {
    minutes, checks: load.count, failedChecks: load.errors, policyPublishes: published, reloads, rejected,
    webhooks, rssEarlyMiB: early, rssLateMiB: late, rssGrowth: growth, peakRssMiB: Math.max(...samples.map((s) => s.rssMiB)), samples,
  };
  result.lines = [
    `- ${minutes} min, ${load.count} Checks at ${rate}/s: ${load.errors} failed`,
    `- policy republished ${published} times; reloads logged ${reloads}, rejected ${rejected}`,
    `- webhooks: ${webhooks.sent} sent, ${webhooks.failed} not answered 200`,
    `- RSS after warm-up: ${early.toFixed(0)} MiB -> ${late.toFixed(0)} MiB (${(growth * 100).toFixed(1)}%; target < 10%), peak ${result.peakRssMiB.toFixed(0)} MiB`,
    `- zero failed requests during reloads: ${load.errors === 0 ? "yes" : "no"}`,
  ];
  return result;
}

/** Bundle A is the build; bundle B is the same policy whose data.json differs by whitespace, so a new revision. */
function twoRevisions(dir) {
  const wasm = readFileSync(join(dir, "policy.wasm"));
  const a = readFileSync(join(dir, "data.json"));
  const b = Buffer.concat([a, Buffer.from("\n")]);
  const bundle = (data) => ({ data, manifest: JSON.stringify({ revision: createHash("sha256").update(wasm).update(data).digest("hex").slice(0, 16), entrypoint: "bulkhead/decision" }) + "\n" });
  return [bundle(a), bundle(b)];
}

/** Same order as scripts/build-policies.sh: data first, bundle.json last, each by rename. */
function publish(dir, { data, manifest }) {
  writeFileSync(join(dir, ".data.json.tmp"), data);
  renameSync(join(dir, ".data.json.tmp"), join(dir, "data.json"));
  writeFileSync(join(dir, ".bundle.json.tmp"), manifest);
  renameSync(join(dir, ".bundle.json.tmp"), join(dir, "bundle.json"));
}

const signer = new Stripe("sk_test_signing_only");
let eventCounter = 0;

/** A customer.updated naming a hot tenant: records the event and maps the customer, one store write. */
async function webhook(httpPort, tenants, counts) {
  const n = eventCounter++;
  const tenant = tenants[n % tenants.length];
  const created = Math.floor(Date.now() / 1000);
  const payload = JSON.stringify({
    id: `evt_soak_${process.pid}_${n}`, object: "event", api_version: "2025-06-30.basil", created,
    data: { object: { id: `cus_soak_${tenant}`, object: "customer", metadata: { tenant_id: tenant } }, previous_attributes: {} },
    livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type: "customer.updated",
  });
  const header = signer.webhooks.generateTestHeaderString({ payload, secret: SECRET, timestamp: created });
  counts.sent++;
  try {
    const response = await fetch(`http://127.0.0.1:${httpPort}/webhooks/stripe`, {
      method: "POST", headers: { "content-type": "application/json", "stripe-signature": header }, body: payload,
    });
    await response.arrayBuffer();
    if (response.status !== 200) counts.failed++;
  } catch {
    counts.failed++;
  }
}
