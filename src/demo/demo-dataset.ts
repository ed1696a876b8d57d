import type { Db } from "../store/database.js";
import type { RevisionWriter } from "../store/revision-writer.js";
import type { Stores } from "../store/stores.js";
import { applySeed, type StoreSeed } from "./store-seed.js";

const proEntitlements = ["projects", "exports.csv", "team_members", "analytics.pro"];

/** DESIGN.md section 10: what `npm start` serves on an empty database. */
export const DEMO_DATASET: StoreSeed = {
  meters: [
    { name: "projects", kind: "count", reset: "none", description: "projects the tenant has (reported by the host)" },
    { name: "seats", kind: "seats", reset: "none", description: "active members plus pending invites" },
    { name: "exports.csv.monthly", kind: "consumable", reset: "calendar_month", description: "CSV exports per month" },
  ],
  plans: [
    {
      code: "free",
      name: "Free",
      entitlements: ["projects"],
      limits: [
        { meter: "projects", soft: null, hard: 3 },
        { meter: "seats", soft: null, hard: 3 },
      ],
    },
    {
      code: "pro",
      name: "Pro",
      entitlements: proEntitlements,
      limits: [
        { meter: "projects", soft: null, hard: 100 },
        { meter: "seats", soft: null, hard: 10 },
        { meter: "exports.csv.monthly", soft: 80, hard: 100 },
      ],
    },
    {
      code: "enterprise",
      name: "Enterprise",
      entitlements: [...proEntitlements, "sso", "audit.export"],
      limits: [
        { meter: "projects", soft: null, hard: 10_000 },
        { meter: "seats", soft: null, hard: 1_000 },
        { meter: "exports.csv.monthly", soft: 8_000, hard: 10_000 },
      ],
    },
  ],
  addons: [
    // A Stripe subscription item whose price lookup_key is "seats" maps here.
    { code: "seats", name: "Extra seats", entitlements: [], limits: [{ meter: "seats", soft: null, hard: 1 }] },
  ],
  // A tenant whose paid subscription ended is back on free with full access to it.
  planBillingAccess: [{ planCode: "free", billingStatus: "canceled", access: "full" }],
  tenants: [
    { id: "ten_acme", slug: "acme", name: "Acme", planCode: "pro", billingStatus: "active", region: "us", tags: ["beta"] },
    { id: "ten_globex", slug: "globex", name: "Globex", planCode: "free", billingStatus: "active", region: "eu" },
    { id: "ten_initech", slug: "initech", name: "Initech", planCode: "pro", billingStatus: "unpaid", region: "us" },
  ],
  users: [
    { id: "usr_alice", email: "alice@acme.example", displayName: "Alice" },
    { id: "usr_bob", email: "bob@acme.example", displayName: "Bob" },
    { id: "usr_carol", email: "carol@globex.example", displayName: "Carol" },
    { id: "usr_dave", email: "dave@initech.example", displayName: "Dave" },
  ],
  memberships: [
    { tenantId: "ten_acme", actorId: "usr_alice", role: "owner" },
    { tenantId: "ten_acme", actorId: "usr_bob", role: "viewer" },
    { tenantId: "ten_globex", actorId: "usr_carol", role: "admin" },
    { tenantId: "ten_acme", actorId: "usr_carol", role: "viewer" },
    { tenantId: "ten_initech", actorId: "usr_dave", role: "admin" },
  ],
  usage: [
    { tenantId: "ten_acme", meter: "projects", used: 4 },
    { tenantId: "ten_acme", meter: "exports.csv.monthly", used: 12 },
    { tenantId: "ten_globex", meter: "projects", used: 1 },
  ],
  flags: [
    {
      key: "new_export_pipeline",
      kind: "release",
      description: "CSV exports through the new pipeline; required by reports.export",
      owner: "team-reports",
      risk: "medium",
      enabled: true,
      cleanupAt: Date.UTC(2027, 5, 30),
      rules: [
        { rule: "plans", params: { plans: ["pro", "enterprise"] } },
        { rule: "percentage", params: { percentage: 100, bucketing: 1 } },
      ],
    },
    {
      key: "ai_assistant",
      kind: "experiment",
      description: "AI assistant experiment, half of all tenants by tenant bucket",
      owner: "team-ai",
      risk: "low",
      enabled: true,
      cleanupAt: Date.UTC(2027, 2, 31),
      rules: [{ rule: "percentage", params: { percentage: 50, bucketing: 1 } }],
    },
  ],
};

/** Seeds the demo dataset when (and only when) the database has no tenants. */
export function seedDemoIfEmpty(db: Db, writer: RevisionWriter, stores: Stores): boolean {
  const tenants = db.prepare("SELECT count(*) FROM tenants").pluck().get() as number;
  if (tenants > 0) return false;
  applySeed(writer, stores, DEMO_DATASET);
  return true;
}
