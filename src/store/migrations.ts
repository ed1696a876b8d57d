import type { Db } from "./database.js";
import { schema001 } from "./schema-001.js";
import { schema002 } from "./schema-002.js";
import { schema003 } from "./schema-003.js";
import { schema004 } from "./schema-004.js";
import { schema005 } from "./schema-005.js";
import { schema006 } from "./schema-006.js";
import { schema007 } from "./schema-007.js";
import { schema008 } from "./schema-008.js";
import { schema009 } from "./schema-009.js";
import { schema010 } from "./schema-010.js";
import { schema011 } from "./schema-011.js";

/**
 * Numbered, append-only migrations. A migration that has shipped is never
 * edited; changes come as a new number. Each runs in its own transaction,
 * together with the bump of `user_version`, so a crash leaves either the old
 * or the new schema.
 */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  { version: 1, name: "directory, commercial, usage, flags, audit, revision", sql: schema001 },
  { version: 2, name: "add-ons, limit overrides, reservations, idempotency, warnings, outbox", sql: schema002 },
  { version: 3, name: "billing mirror, events, watermarks, access per plan, admin audit", sql: schema003 },
  { version: 4, name: "API keys", sql: schema004 },
  { version: 5, name: "staff, impersonation sessions, approvals", sql: schema005 },
  { version: 6, name: "approvals store their content, membership history", sql: schema006 },
  { version: 7, name: "seat counter per tenant", sql: schema007 },
  { version: 8, name: "flag kill switch, environments, variants", sql: schema008 },
  { version: 9, name: "hash chain over the decision log and the admin audit", sql: schema009 },
  { version: 10, name: "retention anchors of the audit chains", sql: schema010 },
  { version: 11, name: "break-glass grants", sql: schema011 },
];

export function applyMigrations(db: Db): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  if (current > latest) {
    throw new Error(`database schema version ${current} is newer than this build knows (${latest}); upgrade bulkhead`);
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    }).immediate();
  }
}
