import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RawCheck } from "../decision/check-input.js";
import { readPolicyBundle } from "../engine/policy-bundle.js";
import { openDatabase } from "../store/database.js";
import { generateCases } from "./attack-matrix.js";
import { loadSuite, suiteSeeds } from "./suite.js";
import { localTarget, type Outcome } from "./targets.js";
import type { StoreSeed } from "../demo/store-seed.js";

export interface Flip {
  id: string;
  request: RawCheck;
  from: Outcome;
  to: Outcome;
}

export interface PolicyDiff {
  fromRevision: string;
  toRevision: string;
  replayed: number;
  flips: Flip[];
}

/**
 * Re-evaluates recorded decisions (a sidecar database's decision log) or a
 * suite's generated cases under two bundles over the same store state and
 * reports every allow <-> deny flip. Reason-only changes are not flips.
 */
export async function diffPolicies(options: { fromDir: string; toDir: string; replay: string }): Promise<PolicyDiff> {
  const [fromBundle, toBundle] = await Promise.all([readPolicyBundle(options.fromDir), readPolicyBundle(options.toDir)]);
  const { requests, seeds, dbPath } = loadReplay(options.replay, fromBundle.data);
  const from = await localTarget(seeds, options.fromDir, dbPath && copyOf(dbPath));
  const to = await localTarget(seeds, options.toDir, dbPath && copyOf(dbPath));
  try {
    const flips: Flip[] = [];
    for (const { id, request } of requests) {
      const [a, b] = await Promise.all([from.check(request), to.check(request)]);
      if (allowed(a) !== allowed(b)) flips.push({ id, request, from: a, to: b });
    }
    return { fromRevision: fromBundle.revision, toRevision: toBundle.revision, replayed: requests.length, flips };
  } finally {
    await Promise.all([from.close(), to.close()] as Promise<void>[]);
  }
}

const allowed = (o: Outcome) => "allow" in o && o.allow;

/** A suite (.yaml/.yml) or a sidecar database whose decision_log is replayed against its own state. */
function loadReplay(path: string, data: Parameters<typeof generateCases>[2]): {
  requests: { id: string; request: RawCheck }[];
  seeds: StoreSeed[];
  dbPath?: string;
} {
  if (!existsSync(path)) throw new Error(`--replay ${path}: no such file`);
  if (/\.ya?ml$/.test(path)) {
    const suite = loadSuite(path);
    const seeds = suiteSeeds(suite);
    return { requests: generateCases(suite, seeds, data).map((c) => ({ id: c.id, request: c.request })), seeds };
  }
  const db = openDatabase(path);
  try {
    const rows = db
      .prepare(
        `SELECT DISTINCT tenant_id, actor_id, actor_type, action, resource_type, resource_id, resource_tenant_id, source
           FROM decision_log ORDER BY tenant_id, actor_id, action, resource_id`,
      )
      .all() as Record<string, string>[];
    const requests = rows.map((r) => ({
      id: `${r.actor_id}@${r.tenant_id}/${r.action}/${r.resource_id || r.resource_type}`,
      request: {
        principal: { tenantId: r.tenant_id, actorId: r.actor_id, actorType: r.actor_type, source: r.source },
        action: r.action,
        resource: { type: r.resource_type, id: r.resource_id, tenantId: r.resource_tenant_id },
      },
    }));
    return { requests, seeds: [], dbPath: path };
  } finally {
    db.close();
  }
}

/** Replays run on a copy so the recorded database is never written to. */
function copyOf(dbPath: string): string {
  const db = openDatabase(dbPath);
  const copy = join(mkdtempSync(join(tmpdir(), "bulkhead-diff-")), "replay.db");
  db.prepare("VACUUM INTO ?").run(copy);
  db.close();
  return copy;
}

export function describeDiff(diff: PolicyDiff, describe: (o: Outcome) => string): string {
  const lines = [`policy diff ${diff.fromRevision} -> ${diff.toRevision}: ${diff.replayed} decisions replayed, ${diff.flips.length} flips`];
  for (const f of diff.flips) lines.push(`  ${f.id}: ${describe(f.from)} -> ${describe(f.to)}`);
  return lines.join("\n");
}

