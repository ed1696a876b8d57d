import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { percentageBucket, variantTarget } from "../../src/flags/bucketing.js";
import { evaluateFlagDetails, type FlagSubject } from "../../src/flags/flag-evaluator.js";
import type { Flag, FlagRule } from "../../src/flags/flag-store.js";
import { murmur3x86_32, murmur3x86_32Bytes } from "../../src/flags/murmur3.js";
import { SqliteFlagStore } from "../../src/flags/sqlite-flag-store.js";
import { openDatabase } from "../../src/store/database.js";
import { RevisionWriter } from "../../src/store/revision-writer.js";
import { testClock } from "../support/test-time.js";

const flag = (rules: FlagRule[], over: Partial<Flag> = {}): Flag => ({
  key: "new_reports", kind: "release", description: "", owner: "team-reports", risk: "low", enabled: true, killed: false,
  environments: [], createdAt: 0, cleanupAt: null, fullyOnSince: null, lastEvaluatedAt: null, rules, variants: null, ...over,
});
const pro: FlagSubject = {
  tenantId: "ten_acme", actorId: "usr_alice", role: "owner", planCode: "pro",
  entitlements: ["projects", "analytics.pro"], tags: ["beta"], environment: "production",
};
const free: FlagSubject = { ...pro, tenantId: "ten_globex", actorId: "usr_carol", role: "admin", planCode: "free", entitlements: ["projects"], tags: [] };
const pct = (percentage: number, extra: object = {}): FlagRule => ({ rule: "percentage", params: { percentage, bucketing: 1, ...extra } });

describe("flag rules in their fixed order", () => {
  it("a kill switch wins over every rule, an allow list included", () => {
    const f = flag([{ rule: "tenants_allow", params: { tenants: ["ten_acme"] } }, pct(100)], { killed: true });
    expect(evaluateFlagDetails(f, pro)).toEqual({ key: "new_reports", value: false, reason: "DISABLED" });
  });

  it("a flag limited to staging is off in production", () => {
    expect(evaluateFlagDetails(flag([pct(100)], { environments: ["staging"] }), pro).value).toBe(false);
    expect(evaluateFlagDetails(flag([pct(100)], { environments: ["staging"] }), { ...pro, environment: "staging" }).value).toBe(true);
  });

  it("a deny-listed tenant never gets the flag, even when it is also allow-listed, at 100%", () => {
    // Stored allow-first: the evaluator still applies the deny list first.
    const f = flag([{ rule: "tenants_allow", params: { tenants: ["ten_acme"] } }, { rule: "tenants_deny", params: { tenants: ["ten_acme"] } }, pct(100)]);
    expect(evaluateFlagDetails(f, pro)).toMatchObject({ value: false, reason: "DEFAULT" });
  });

  it("an allow-listed tenant gets the flag at 0%; others do not", () => {
    const f = flag([{ rule: "tenants_allow", params: { tenants: ["ten_acme"] } }, pct(0)]);
    expect(evaluateFlagDetails(f, pro)).toMatchObject({ value: true, reason: "TARGETING_MATCH" });
    expect(evaluateFlagDetails(f, { ...pro, tenantId: "ten_other" }).value).toBe(false);
  });

  it("a free-plan tenant never gets a flag that requires a pro entitlement, at 100% and allow-listed", () => {
    const f = flag([{ rule: "tenants_allow", params: { tenants: ["ten_globex"] } }, { rule: "entitlement", params: { entitlement: "analytics.pro" } }, pct(100)]);
    expect(evaluateFlagDetails(f, free)).toMatchObject({ value: false, reason: "DEFAULT" });
    expect(evaluateFlagDetails(f, pro)).toMatchObject({ value: true, reason: "TARGETING_MATCH" });
    for (let i = 0; i < 1000; i++) expect(evaluateFlagDetails(f, { ...free, tenantId: `ten_${i}` }).value).toBe(false);
  });

  it("plans, tags and actor roles each narrow it", () => {
    expect(evaluateFlagDetails(flag([{ rule: "plans", params: { plans: ["pro"] } }]), free).value).toBe(false);
    expect(evaluateFlagDetails(flag([{ rule: "plans", params: { plans: ["pro"] } }]), { ...pro, planCode: null }).value).toBe(false);
    expect(evaluateFlagDetails(flag([{ rule: "tags", params: { tags: ["beta"] } }]), pro).value).toBe(true);
    expect(evaluateFlagDetails(flag([{ rule: "tags", params: { tags: ["beta"] } }]), free).value).toBe(false);
    expect(evaluateFlagDetails(flag([{ rule: "roles", params: { roles: ["owner"] } }]), pro).value).toBe(true);
    expect(evaluateFlagDetails(flag([{ rule: "roles", params: { roles: ["owner"] } }]), { ...pro, role: "viewer" }).value).toBe(false);
    expect(evaluateFlagDetails(flag([{ rule: "roles", params: { roles: ["owner"] } }]), { ...pro, role: undefined }).value).toBe(false);
  });

  it("an unknown rule or bucketing version is an error with value off, never on", () => {
    const unknownRule = flag([{ rule: "everyone", params: {} } as unknown as FlagRule]);
    expect(evaluateFlagDetails(unknownRule, pro)).toMatchObject({ value: false, reason: "ERROR", errorCode: "GENERAL" });
    expect(evaluateFlagDetails(flag([pct(100, { bucketing: 2 })]), pro)).toMatchObject({ value: false, reason: "ERROR", errorCode: "GENERAL" });
    expect(evaluateFlagDetails(flag([pct(100, { stickiness: "actor" })]), { ...pro, actorId: undefined })).toMatchObject({
      value: false, reason: "ERROR", errorCode: "TARGETING_KEY_MISSING",
    });
  });

  it("a partial rollout that lets a tenant in says SPLIT, a full one TARGETING_MATCH", () => {
    const half = flag([pct(50)]);
    const reasons = new Set(Array.from({ length: 200 }, (_, i) => evaluateFlagDetails(half, { ...pro, tenantId: `ten_${i}` })).map((d) => `${d.value}:${d.reason}`));
    expect(reasons).toEqual(new Set(["true:SPLIT", "false:DEFAULT"]));
    expect(evaluateFlagDetails(flag([pct(100)]), pro).reason).toBe("TARGETING_MATCH");
  });
});

describe("bucketing v1", () => {
  it("buckets by tenant by default, so every member of a workspace sees the same", () => {
    const f = flag([pct(50)]);
    const answers = new Set(["usr_1", "usr_2", "usr_3", "usr_4", "usr_5", "usr_6"].map((actorId) => evaluateFlagDetails(f, { ...pro, actorId }).value));
    expect(answers.size).toBe(1);
  });

  it("is within 1 percentage point of the target over 100,000 tenants", () => {
    for (const target of [1, 10, 25, 50, 90]) {
      const f = flag([pct(target)], { key: `rollout_${target}` });
      let on = 0;
      for (let i = 0; i < 100_000; i++) if (evaluateFlagDetails(f, { ...pro, tenantId: `ten_${i.toString(36)}` }).value) on++;
      expect(Math.abs(on / 1000 - target)).toBeLessThanOrEqual(1);
    }
  });

  it("puts a tenant in the same bucket after the store is closed and reopened", () => {
    const path = join(mkdtempSync(join(tmpdir(), "bulkhead-flags-")), "b.db");
    const open = () => {
      const db = openDatabase(path);
      return { db, store: new SqliteFlagStore(db), writer: new RevisionWriter(db, testClock()) };
    };
    const first = open();
    first.writer.write((tx) => first.store.putFlag(tx, flag([pct(37)])));
    const before = Array.from({ length: 500 }, (_, i) => evaluateFlagDetails(first.store.get("new_reports")!, { ...pro, tenantId: `ten_${i}` }).value);
    first.db.close();
    const second = open();
    const stored = second.store.get("new_reports")!;
    expect(stored.rules).toEqual([pct(37)]);
    const after = Array.from({ length: 500 }, (_, i) => evaluateFlagDetails(stored, { ...pro, tenantId: `ten_${i}` }).value);
    expect(after).toEqual(before);
    second.db.close();
  });

  it("hashes non-ASCII keys as UTF-8 bytes, not as murmurhash3js (Unleash's Node SDK) does", () => {
    const key = "flag:tenant-ü";
    const utf8 = murmur3x86_32(key, 0);
    // murmurhash3js (Unleash's Node SDK) keeps charCodeAt(i) & 0xff: 'ü' (U+00FC) is one byte 0xFC.
    const lowBytesOf = (s: string) => Uint8Array.from(Array.from({ length: s.length }, (_, i) => s.charCodeAt(i) & 0xff));
    const lowBytes = murmur3x86_32Bytes(lowBytesOf(key), 0);
    expect(utf8).not.toBe(lowBytes);
    expect(percentageBucket(1, "flag", "tenant-ü")).toBe((utf8 % 100) + 1);
    // ASCII keys are where the two agree, which is every id Bulkhead issues.
    expect(murmur3x86_32("flag:ten_acme", 0)).toBe(murmur3x86_32Bytes(lowBytesOf("flag:ten_acme"), 0));
  });

  it("picks variants with Unleash's seed and the total weight", () => {
    expect(variantTarget(1, "Feature.Variants.B", "2", 2)).toBe(2);
    expect(variantTarget(2, "x", "y", 2)).toBeNull();
  });
});
