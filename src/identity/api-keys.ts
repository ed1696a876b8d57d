import { randomBytes, timingSafeEqual } from "node:crypto";
import { ulid } from "../ids.js";
import type { Db } from "../store/database.js";
import type { WriteScope } from "../store/revision-writer.js";
import { keyedHash } from "./key-secret.js";

/** A key as stored; the secret itself is never kept. */
export interface ApiKey {
  id: string;
  tenantId: string;
  name: string;
  scopes: string[];
  ratePerMinute: number;
  expiresAt: number | null;
  revokedAt: number | null;
  retiresAt: number | null;
  createdAt: number;
}

/** What a key can do now: active, retiring (rotated, still in its overlap), retired, expired or revoked. */
export function apiKeyState(k: ApiKey, now: number): "active" | "retiring" | "retired" | "expired" | "revoked" {
  if (k.revokedAt !== null) return "revoked";
  if (k.expiresAt !== null && k.expiresAt <= now) return "expired";
  if (k.retiresAt !== null) return k.retiresAt <= now ? "retired" : "retiring";
  return "active";
}

/** Raw keys look like `bk_<key id>.<43 chars of secret>`; the id finds the row, the HMAC proves the secret. */
const KEY_FORMAT = /^bk_(key_[0-9A-Z]{26})\.([A-Za-z0-9_-]{43})$/;

export function looksLikeApiKey(raw: string): boolean {
  return KEY_FORMAT.test(raw);
}

/** The key id a raw key names (its public part, the actor of its calls), without checking the secret. */
export function apiKeyIdOf(raw: string): string | undefined {
  return KEY_FORMAT.exec(raw)?.[1];
}

/**
 * API keys for the callers of one tenant: created with scopes (permissions),
 * an expiry and a rate; shown once; rotated with an overlap; revoked at once.
 * Verification is a keyed hash compared in constant time.
 */
export class ApiKeyStore {
  private readonly stmt;

  constructor(
    db: Db,
    private readonly serverSecret: Buffer,
  ) {
    const columns = `id, tenant_id AS tenantId, name, scopes, rate_per_min AS ratePerMinute, expires_at AS expiresAt,
      revoked_at AS revokedAt, retires_at AS retiresAt, created_at AS createdAt`;
    this.stmt = {
      byId: db.prepare<[string], Omit<ApiKey, "scopes"> & { scopes: string; secret_hash: string }>(
        `SELECT ${columns}, secret_hash FROM api_keys WHERE id = ?`,
      ),
      list: db.prepare<[string], Omit<ApiKey, "scopes"> & { scopes: string }>(`SELECT ${columns} FROM api_keys WHERE tenant_id = ? ORDER BY created_at`),
      insert: db.prepare(
        `INSERT INTO api_keys (id, tenant_id, name, secret_hash, scopes, rate_per_min, expires_at, created_at, created_by)
         VALUES (@id, @tenantId, @name, @hash, @scopes, @ratePerMinute, @expiresAt, @now, @createdBy)`,
      ),
      revoke: db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL"),
      revokeAll: db.prepare("UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND revoked_at IS NULL"),
      retire: db.prepare("UPDATE api_keys SET retires_at = ?, replaced_by = ? WHERE id = ?"),
    };
  }

  /** Returns the stored key and the raw key, which is shown once and never stored. */
  create(
    tx: WriteScope,
    spec: { tenantId: string; name: string; scopes: string[]; ratePerMinute: number; expiresAt: number | null; createdBy: string },
  ): { key: ApiKey; raw: string } {
    const minted = this.mint(tx.now);
    return { key: this.createHashed(tx, spec, minted), raw: minted.raw };
  }

  /**
   * A new key's id, raw value and keyed hash, made before the write: in
   * replicated mode only the id and hash go into the command (ADR 76), the
   * raw value goes back to the caller alone.
   */
  mint(now: number): { id: string; raw: string; hash: string } {
    const id = `key_${ulid(now)}`;
    const raw = `bk_${id}.${randomBytes(32).toString("base64url")}`;
    return { id, raw, hash: this.hash(raw) };
  }

  /** Stores a key minted elsewhere by its id and hash; the raw value never reaches this method. */
  createHashed(
    tx: WriteScope,
    spec: { tenantId: string; name: string; scopes: string[]; ratePerMinute: number; expiresAt: number | null; createdBy: string },
    minted: { id: string; hash: string },
  ): ApiKey {
    const { id, hash } = minted;
    this.stmt.insert.run({ ...spec, id, hash, scopes: JSON.stringify(spec.scopes), now: tx.now });
    tx.changed(spec.tenantId, "api_key");
    return { ...spec, id, revokedAt: null, retiresAt: null, createdAt: tx.now };
  }

  /**
   * Stores a key whose raw value was made elsewhere (a cross-tenant suite's
   * fixed keys), so suites can attack with real, valid keys.
   */
  importRaw(tx: WriteScope, raw: string, spec: { tenantId: string; name: string; scopes: string[]; createdBy: string }): ApiKey {
    const match = KEY_FORMAT.exec(raw);
    if (!match) throw new Error("not a Bulkhead API key (bk_key_<ULID>.<43 base64url chars>)");
    const id = match[1]!;
    this.stmt.insert.run({ ...spec, id, hash: this.hash(raw), scopes: JSON.stringify(spec.scopes), ratePerMinute: 600_000, expiresAt: null, now: tx.now });
    tx.changed(spec.tenantId, "api_key");
    return { ...spec, id, ratePerMinute: 600_000, expiresAt: null, revokedAt: null, retiresAt: null, createdAt: tx.now };
  }

  /** A new key with the same tenant, name, scopes and rate; the old one works until `overlapMs` from now. */
  /**
   * Only a live key that was never rotated can be: rotating a retiring or
   * retired key again would move its end and revive an old secret.
   */
  rotate(tx: WriteScope, keyId: string, overlapMs: number, createdBy: string, minted: { id: string; hash: string }): ApiKey | undefined {
    const old = this.get(keyId);
    if (!old || old.revokedAt !== null || old.retiresAt !== null || (old.expiresAt !== null && old.expiresAt <= tx.now)) return undefined;
    const next = this.createHashed(tx, { ...old, createdBy }, minted);
    this.stmt.retire.run(tx.now + overlapMs, next.id, keyId);
    return next;
  }

  revoke(tx: WriteScope, tenantId: string, keyId: string): boolean {
    const revoked = this.stmt.revoke.run(tx.now, keyId, tenantId).changes > 0;
    if (revoked) tx.changed(tenantId, "api_key");
    return revoked;
  }

  /** Revokes every key of the tenant (tenant deletion); returns how many were live. */
  revokeAll(tx: WriteScope, tenantId: string): number {
    const revoked = this.stmt.revokeAll.run(tx.now, tenantId).changes;
    if (revoked > 0) tx.changed(tenantId, "api_key");
    return revoked;
  }

  get(keyId: string): ApiKey | undefined {
    const row = this.stmt.byId.get(keyId);
    if (!row) return undefined;
    const { secret_hash: _hash, ...key } = row;
    return { ...key, scopes: JSON.parse(row.scopes) as string[] };
  }

  list(tenantId: string): ApiKey[] {
    return this.stmt.list.all(tenantId).map((k) => ({ ...k, scopes: JSON.parse(k.scopes) as string[] }));
  }

  /** The key a raw value proves, if it is live at `now`; undefined for anything else. */
  authenticate(raw: string, now: number): ApiKey | undefined {
    const match = KEY_FORMAT.exec(raw);
    if (!match) return undefined;
    const row = this.stmt.byId.get(match[1]!);
    if (!row) return undefined;
    const expected = Buffer.from(row.secret_hash, "hex");
    const presented = Buffer.from(this.hash(raw), "hex");
    if (expected.length !== presented.length || !timingSafeEqual(expected, presented)) return undefined;
    const key = { ...row, scopes: JSON.parse(row.scopes) as string[] };
    if (key.revokedAt !== null && key.revokedAt <= now) return undefined;
    if (key.expiresAt !== null && key.expiresAt <= now) return undefined;
    if (key.retiresAt !== null && key.retiresAt <= now) return undefined;
    return key;
  }

  private hash(raw: string): string {
    return keyedHash(this.serverSecret, raw);
  }
}

/** When a live key stops being live by time alone. */
export function keyValidUntil(key: ApiKey): number {
  return Math.min(key.expiresAt ?? Infinity, key.retiresAt ?? Infinity);
}
