import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../clock.js";
import { createDecisionCore, type DecisionCore } from "../compose.js";
import { validateCheck, type RawCheck } from "../decision/check-input.js";
import { applySeed, type StoreSeed } from "../demo/store-seed.js";
import { readPolicyBundle } from "../engine/policy-bundle.js";
import { fixedPolicy } from "../engine/policy-source.js";
import { PolicySet } from "../engine/policy-set.js";
import { BulkheadError } from "../errors.js";
import { CheckRequest, DecisionServiceClient } from "../gen/bulkhead/v1/decision.js";
import { ulidGenerator } from "../ids.js";
import { openDatabase, type Db } from "../store/database.js";

/** What one request came to: an answer, or an error (which callers treat as deny). */
export type Outcome = { allow: boolean; reasons: string[] } | { error: string };

export interface DecisionTarget {
  readonly name: string;
  check(request: RawCheck): Promise<Outcome>;
  close(): Promise<void>;
}

/**
 * Decides in this process: a temporary SQLite store seeded with the suite,
 * the real resolver, and the compiled Wasm of `bundleDir`. Neither the smoke
 * cases nor the sidecar's TypeScript boundary guard apply here, so the
 * results are what the policy itself decides, and a broken candidate shows
 * its leaks instead of being masked.
 */
export async function localTarget(seeds: StoreSeed[], bundleDir: string, existingDb?: string): Promise<DecisionTarget & { core: DecisionCore; db: Db }> {
  const dir = mkdtempSync(join(tmpdir(), "bulkhead-xtest-"));
  const db = openDatabase(existingDb ?? join(dir, "xtest.db"));
  const policy = await PolicySet.load(await readPolicyBundle(bundleDir), { smokeTest: false });
  const runtime = { clock: systemClock, ids: ulidGenerator(systemClock), log: () => {} };
  const core = createDecisionCore(db, fixedPolicy(policy), runtime, { boundaryGuard: false });
  for (const seed of seeds) applySeed(core.writer, core.stores, seed, core.apiKeys);
  return {
    name: `in-process (bundle ${policy.revision})`,
    core,
    db,
    async check(request) {
      try {
        const decision = await core.decider.check(validateCheck(request));
        return { allow: decision.allow, reasons: decision.reasons.map((r) => r.code) };
      } catch (error) {
        return { error: error instanceof BulkheadError ? error.code : "INTERNAL" };
      }
    },
    async close() {
      core.decisionLog.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Decides on a live sidecar over gRPC; the sidecar's store must hold the suite's state. */
export function grpcTarget(address: string, token?: string): DecisionTarget {
  const client = new DecisionServiceClient(address, credentials.createInsecure());
  const metadata = new Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  return {
    name: `sidecar ${address}`,
    check: (request) =>
      new Promise((resolve) => {
        client.check(CheckRequest.fromPartial(request as never), metadata, { deadline: Date.now() + 10_000 }, (error: ServiceError | null, response) => {
          if (error) {
            const code = error.metadata?.get("bulkhead-error-code")[0];
            resolve({ error: typeof code === "string" ? code : `GRPC_${error.code}` });
          } else {
            resolve({ allow: response.allow, reasons: response.reasons.map((r) => r.code) });
          }
        });
      }),
    async close() {
      client.close();
    },
  };
}
