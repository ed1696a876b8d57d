import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import { isFullyOn } from "./flag-evaluator.js";
import type { Flag, FlagInput, FlagRule, FlagStore, FlagVariants } from "./flag-store.js";

interface FlagRow {
  key: string;
  kind: Flag["kind"];
  description: string;
  owner: string;
  risk: Flag["risk"];
  enabled: number;
  killed: number;
  environments: string;
  variants: string | null;
  created_at: number;
  cleanup_at: number | null;
  fully_on_since: number | null;
  last_evaluated_at: number | null;
}

const FLAG_COLUMNS = "key, kind, description, owner, risk, enabled, killed, environments, variants, created_at, cleanup_at, fully_on_since, last_evaluated_at";

export class SqliteFlagStore implements FlagStore {
  private readonly stmt;

  constructor(db: Db) {
    this.stmt = {
      flags: db.prepare<[], FlagRow>(`SELECT ${FLAG_COLUMNS} FROM flags ORDER BY key`),
      flag: db.prepare<[string], FlagRow>(`SELECT ${FLAG_COLUMNS} FROM flags WHERE key = ?`),
      rules: db.prepare<[], { flag_key: string; rule: string; params: string }>(
        "SELECT flag_key, rule, params FROM flag_rules ORDER BY flag_key, position",
      ),
      rulesOf: db.prepare<[string], { flag_key: string; rule: string; params: string }>(
        "SELECT flag_key, rule, params FROM flag_rules WHERE flag_key = ? ORDER BY position",
      ),
      putFlag: db.prepare(
        `INSERT INTO flags (key, kind, description, owner, risk, enabled, killed, environments, variants, created_at, cleanup_at, fully_on_since)
         VALUES (@key, @kind, @description, @owner, @risk, @enabled, @killed, @environments, @variants, @now, @cleanupAt, @fullyOnSince)
         ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, description = excluded.description,
           owner = excluded.owner, risk = excluded.risk, enabled = excluded.enabled, killed = excluded.killed,
           environments = excluded.environments, variants = excluded.variants, cleanup_at = excluded.cleanup_at,
           fully_on_since = CASE WHEN excluded.fully_on_since IS NULL THEN NULL
                                 ELSE coalesce(flags.fully_on_since, excluded.fully_on_since) END`,
      ),
      deleteFlag: db.prepare("DELETE FROM flags WHERE key = ?"),
      setKilled: db.prepare("UPDATE flags SET killed = ? WHERE key = ? AND killed <> ?"),
      clearRules: db.prepare("DELETE FROM flag_rules WHERE flag_key = ?"),
      addRule: db.prepare("INSERT INTO flag_rules (flag_key, position, rule, params) VALUES (?, ?, ?, ?)"),
      exists: db.prepare<[string], { key: string }>("SELECT key FROM flags WHERE key = ?"),
      // One UPDATE for the whole batch: the pending map travels as one JSON object {key: epoch ms}.
      recordEvaluated: db.prepare<[string]>(
        `UPDATE flags SET last_evaluated_at = max(coalesce(flags.last_evaluated_at, 0), seen.value)
           FROM json_each(?) AS seen WHERE flags.key = seen.key`,
      ),
    };
  }

  all(): Flag[] {
    const rules = new Map<string, FlagRule[]>();
    for (const row of this.stmt.rules.all()) {
      const list = rules.get(row.flag_key) ?? [];
      list.push(parseRule(row));
      rules.set(row.flag_key, list);
    }
    return this.stmt.flags.all().map((r) => toFlag(r, rules.get(r.key) ?? []));
  }

  get(key: string): Flag | null {
    const row = this.stmt.flag.get(key);
    return row ? toFlag(row, this.stmt.rulesOf.all(key).map(parseRule)) : null;
  }

  putFlag(tx: WriteScope, flag: FlagInput): void {
    const full = { killed: false, environments: [], variants: null, ...flag };
    this.stmt.putFlag.run({
      key: full.key,
      kind: full.kind,
      description: full.description,
      owner: full.owner,
      risk: full.risk,
      cleanupAt: full.cleanupAt,
      enabled: full.enabled ? 1 : 0,
      killed: full.killed ? 1 : 0,
      environments: JSON.stringify(full.environments),
      variants: full.variants ? JSON.stringify(full.variants) : null,
      now: tx.now,
      // When it became on for everyone, kept across rewrites that leave it so (the stale report's clock).
      fullyOnSince: isFullyOn(full) ? tx.now : null,
    });
    this.stmt.clearRules.run(full.key);
    full.rules.forEach((r, i) => this.stmt.addRule.run(full.key, i, r.rule, JSON.stringify(r.params)));
    tx.changed(null, "flag");
  }

  deleteFlag(tx: WriteScope, key: string): boolean {
    if (this.stmt.deleteFlag.run(key).changes === 0) return false;
    tx.changed(null, "flag");
    return true;
  }

  recordEvaluated(lastSeen: ReadonlyMap<string, number>): void {
    if (lastSeen.size > 0) this.stmt.recordEvaluated.run(JSON.stringify(Object.fromEntries(lastSeen)));
  }

  setKilled(tx: WriteScope, key: string, killed: boolean): boolean {
    if (!this.stmt.exists.get(key)) return false;
    const flag = killed ? 1 : 0;
    if (this.stmt.setKilled.run(flag, key, flag).changes > 0) tx.changed(null, "flag");
    return true;
  }
}

function parseRule(row: { rule: string; params: string }): FlagRule {
  return { rule: row.rule, params: JSON.parse(row.params) } as FlagRule;
}

function toFlag(r: FlagRow, rules: FlagRule[]): Flag {
  return {
    key: r.key,
    kind: r.kind,
    description: r.description,
    owner: r.owner,
    risk: r.risk,
    enabled: r.enabled === 1,
    killed: r.killed === 1,
    environments: JSON.parse(r.environments) as string[],
    createdAt: r.created_at,
    cleanupAt: r.cleanup_at,
    fullyOnSince: r.fully_on_since,
    lastEvaluatedAt: r.last_evaluated_at,
    rules,
    variants: r.variants ? (JSON.parse(r.variants) as FlagVariants) : null,
  };
}
