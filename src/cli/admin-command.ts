import { userInfo } from "node:os";
import { parseArgs } from "node:util";
import { systemClock } from "../clock.js";
import { loadConfig } from "../config.js";
import { ApiKeyStore } from "../identity/api-keys.js";
import { loadKeySecret } from "../identity/key-secret.js";
import { AdminAudit } from "../audit/admin-audit.js";
import { openDatabase } from "../store/database.js";
import { RevisionWriter } from "../store/revision-writer.js";

export const ADMIN_USAGE = `bulkhead admin - operator actions on the store (audited)

Usage:
  bulkhead admin api-keys create --tenant T --scopes P1,P2 --name N --reason R [--expires-days D] [--rate PER_MIN]
  bulkhead admin api-keys rotate --key K --overlap-seconds S --reason R
  bulkhead admin api-keys revoke --tenant T --key K --reason R
  bulkhead admin api-keys list --tenant T

Every command takes --db FILE (default BULKHEAD_DB or ./data/bulkhead.db). The
secret of a new key is printed once and never stored: only a keyed hash is
(BULKHEAD_KEY_SECRET, or key.secret beside the database). A rotated key keeps
working for the overlap; a revoked one is refused on the very next Check.
`;

export function adminCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      db: { type: "string" }, tenant: { type: "string" }, scopes: { type: "string" }, name: { type: "string" },
      reason: { type: "string" }, key: { type: "string" }, "expires-days": { type: "string" }, rate: { type: "string" },
      "overlap-seconds": { type: "string" }, help: { type: "boolean", short: "h" },
    },
  });
  const [area, action] = positionals;
  if (values.help || area !== "api-keys" || !action) {
    (values.help ? process.stdout : process.stderr).write(ADMIN_USAGE);
    return values.help ? 0 : 2;
  }
  const require = (name: keyof typeof values): string => {
    const value = values[name];
    if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required for api-keys ${action}`);
    return value;
  };
  const config = loadConfig(process.env, values.db ? { db: values.db } : {});
  const db = openDatabase(config.dbPath);
  try {
    const keys = new ApiKeyStore(db, loadKeySecret(config.dbPath, process.env.BULKHEAD_KEY_SECRET));
    const audit = new AdminAudit(db);
    const writer = new RevisionWriter(db, systemClock);
    const actor = `cli:${userInfo().username}`;
    const record = (tx: Parameters<Parameters<RevisionWriter["write"]>[0]>[0], tenantId: string, keyId: string, verb: string) =>
      audit.record(tx, { actor, tenantId, object: `api_key:${keyId}`, action: `api_key.${verb}`, reason: require("reason"), source: "cli", result: "ok" });

    if (action === "list") {
      for (const k of keys.list(require("tenant"))) {
        const state = k.revokedAt ? "revoked" : k.retiresAt ? `retires ${new Date(k.retiresAt).toISOString()}` : "active";
        console.log(`${k.id}\t${k.name}\t${k.scopes.join(",")}\t${state}`);
      }
      return 0;
    }
    if (action === "create") {
      const tenantId = require("tenant");
      const days = values["expires-days"] ? Number(values["expires-days"]) : null;
      const { result, revision } = writer.write((tx) => {
        const created = keys.create(tx, {
          tenantId, name: require("name"), scopes: require("scopes").split(",").map((s) => s.trim()).filter(Boolean),
          ratePerMinute: values.rate ? Number(values.rate) : 600, expiresAt: days === null ? null : tx.now + days * 86_400_000, createdBy: actor,
        });
        record(tx, tenantId, created.key.id, "create");
        return created;
      });
      console.error(`bulkhead: created ${result.key.id} for ${tenantId} at revision ${revision}; the key is shown once:`);
      console.log(result.raw);
      return 0;
    }
    if (action === "rotate") {
      const overlapMs = Number(require("overlap-seconds")) * 1000;
      const { result } = writer.write((tx) => {
        const rotated = keys.rotate(tx, require("key"), overlapMs, actor);
        if (rotated) record(tx, rotated.key.tenantId, require("key"), "rotate");
        return rotated;
      });
      if (!result) throw new UsageError(`no live key ${require("key")}`);
      console.error(`bulkhead: ${require("key")} works for ${overlapMs / 1000} s more; its replacement ${result.key.id} is shown once:`);
      console.log(result.raw);
      return 0;
    }
    if (action === "revoke") {
      const tenantId = require("tenant");
      const { result } = writer.write((tx) => {
        const revoked = keys.revoke(tx, tenantId, require("key"));
        if (revoked) record(tx, tenantId, require("key"), "revoke");
        return revoked;
      });
      if (!result) throw new UsageError(`no live key ${require("key")} in ${tenantId}`);
      console.error(`bulkhead: revoked ${require("key")}`);
      return 0;
    }
    process.stderr.write(ADMIN_USAGE);
    return 2;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`bulkhead admin: ${error.message}\n`);
      return 2;
    }
    throw error;
  } finally {
    db.close();
  }
}

class UsageError extends Error {}
