import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import type { Flag, FlagRule, FlagStore } from "./flag-store.js";

interface FlagRow {
  key: string;
  kind: Flag["kind"];
  description: string;
  owner: string;
  risk: string;
  enabled: number;
  cleanup_at: number | null;
}

export class SqliteFlagStore implements FlagStore {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = {
      flags: db.prepare<[], FlagRow>(
        "SELECT key, kind, description, owner, risk, enabled, cleanup_at FROM flags ORDER BY key",
      ),
      rules: db.prepare<[], { flag_key: string; rule: string; params: string }>(
        "SELECT flag_key, rule, params FROM flag_rules ORDER BY flag_key, position",
      ),
      putFlag: db.prepare(
        `INSERT INTO flags (key, kind, description, owner, risk, enabled, created_at, cleanup_at)
         VALUES (@key, @kind, @description, @owner, @risk, @enabled, @now, @cleanupAt)
         ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, description = excluded.description,
           owner = excluded.owner, risk = excluded.risk, enabled = excluded.enabled, cleanup_at = excluded.cleanup_at`,
      ),
      clearRules: db.prepare("DELETE FROM flag_rules WHERE flag_key = ?"),
      addRule: db.prepare("INSERT INTO flag_rules (flag_key, position, rule, params) VALUES (?, ?, ?, ?)"),
    };
  }

  all(): Flag[] {
    const rules = new Map<string, FlagRule[]>();
    for (const row of this.stmt.rules.all()) {
      const list = rules.get(row.flag_key) ?? [];
      list.push({ rule: row.rule, params: JSON.parse(row.params) } as FlagRule);
      rules.set(row.flag_key, list);
    }
    return this.stmt.flags.all().map((r) => ({
      key: r.key,
      kind: r.kind,
      description: r.description,
      owner: r.owner,
      risk: r.risk,
      enabled: r.enabled === 1,
      cleanupAt: r.cleanup_at,
      rules: rules.get(r.key) ?? [],
    }));
  }

  putFlag(tx: WriteScope, flag: Flag): void {
    this.stmt.putFlag.run({ ...flag, enabled: flag.enabled ? 1 : 0, now: tx.now });
    this.stmt.clearRules.run(flag.key);
    flag.rules.forEach((r, i) => this.stmt.addRule.run(flag.key, i, r.rule, JSON.stringify(r.params)));
    tx.changed(null, "flag");
  }
}
