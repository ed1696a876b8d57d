import { createHmac, timingSafeEqual } from "node:crypto";
import { systemClock, type Clock } from "../clock.js";
import { objectKeyTenant, requireTenantObjectKey } from "./object-key.js";
import { TenantScopeError } from "./tenant-scope-error.js";
import type { TrustedTenantContext } from "./trusted-context.js";

/** One HMAC-SHA256 key. Keep old keys configured until every URL they signed has expired. */
export interface SigningKey {
  /** Travels in the URL (`kid`) so verification picks the right secret: letters, digits, `_` and `-`. */
  id: string;
  /** At least 32 bytes. */
  secret: string | Uint8Array;
}

/** Configuration of a {@link DownloadUrlSigner}. */
export interface DownloadUrlSignerOptions {
  /** Every key verification accepts; at least one. */
  keys: readonly SigningKey[];
  /** The key new URLs are signed with (rotate: add a key, make it current, later drop the old one). */
  currentKeyId: string;
  /** Where downloads are served, e.g. `https://files.example.com/download`. */
  baseUrl: string;
  /** Source of "now" (default: the system clock); tests pass a manual clock. */
  clock?: Clock;
  /** The longest lifetime a URL may have, when signed and when verified (default one hour). */
  maxTtlMs?: number;
}

/** Why a download URL was refused; hosts answer 404 for all of them. */
export type DownloadUrlRejection = "malformed" | "unknown_key" | "bad_signature" | "wrong_tenant" | "expired";

/** A download URL failed verification: see {@link DownloadUrlRejected.reason}. */
export class DownloadUrlRejected extends Error {
  override readonly name = "DownloadUrlRejected";
  /** @param reason - the stable cause */
  constructor(readonly reason: DownloadUrlRejection, message: string) {
    super(`download URL rejected (${reason}): ${message}`);
  }
}

/** What a verified URL grants: one object of one tenant until `expiresAt`. */
export interface VerifiedDownload {
  tenantId: string;
  objectKey: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** The key that signed it. */
  keyId: string;
}

const DEFAULT_MAX_TTL_MS = 60 * 60 * 1000;
const MIN_SECRET_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Signs and verifies download URLs bound to one tenant, one object key and
 * one expiry with HMAC-SHA256. The MAC covers all three plus the key id, so
 * changing any of them (or the signature) fails verification; verification
 * also refuses another tenant's URL and an expired one. Key rotation: URLs are
 * signed with `currentKeyId` and verified with whichever configured key their
 * `kid` names; an unknown `kid` is refused.
 */
export class DownloadUrlSigner {
  private readonly secrets: ReadonlyMap<string, Buffer>;
  private readonly currentKeyId: string;
  private readonly baseUrl: URL;
  private readonly clock: Clock;
  private readonly maxTtlMs: number;

  /** Throws {@link TenantScopeError} `TENANT_SCOPE_INVALID` naming the field for a bad configuration. */
  constructor(options: DownloadUrlSignerOptions) {
    this.secrets = checkedKeys(options.keys);
    if (!this.secrets.has(options.currentKeyId)) invalid("currentKeyId", `no configured key has id ${JSON.stringify(options.currentKeyId)}`);
    this.currentKeyId = options.currentKeyId;
    this.baseUrl = checkedBaseUrl(options.baseUrl);
    this.clock = options.clock ?? systemClock;
    this.maxTtlMs = options.maxTtlMs ?? DEFAULT_MAX_TTL_MS;
    if (!Number.isInteger(this.maxTtlMs) || this.maxTtlMs < 1000) invalid("maxTtlMs", "must be a whole number of at least 1000 ms");
  }

  /**
   * A URL for `objectKey`, which must lie under the context's tenant prefix
   * (see {@link tenantObjectKey}), valid for `ttlMs` (at most `maxTtlMs`).
   */
  sign(context: TrustedTenantContext, objectKey: string, ttlMs: number): string {
    requireTenantObjectKey(context, objectKey);
    if (!Number.isInteger(ttlMs) || ttlMs < 1000 || ttlMs > this.maxTtlMs) invalid("ttlMs", `must be a whole number of ms between 1000 and ${this.maxTtlMs}`);
    // Whole seconds, rounded down: a URL never outlives the lifetime asked for.
    const expires = String(Math.floor((this.clock.now() + ttlMs) / 1000));
    const claims = { tenant: context.tenantId, object: objectKey, expires, kid: this.currentKeyId };
    const url = new URL(this.baseUrl);
    for (const [name, value] of Object.entries(claims)) url.searchParams.set(name, value);
    url.searchParams.set("sig", this.mac(this.secrets.get(this.currentKeyId)!, claims));
    return url.toString();
  }

  /**
   * Checks a URL for a download by `expected.tenantId` (the requester's trusted
   * context, or the tenant a host resolved from its own hostname). Returns what
   * it grants; throws {@link DownloadUrlRejected} for a malformed URL, an
   * unknown key id, a bad signature (any tampering), another tenant's URL, or an
   * expired one. The signature is checked before any claim is believed.
   */
  verify(url: string | URL, expected: { readonly tenantId: string }): VerifiedDownload {
    const claims = parseClaims(url);
    const secret = this.secrets.get(claims.kid);
    if (!secret) throw new DownloadUrlRejected("unknown_key", `no configured key has id ${JSON.stringify(claims.kid)}`);
    if (!sameMac(this.mac(secret, claims), claims.sig)) throw new DownloadUrlRejected("bad_signature", "the signature does not match tenant, object, expiry and key");
    if (claims.tenant !== expected.tenantId || objectKeyTenant(claims.object) !== claims.tenant) {
      throw new DownloadUrlRejected("wrong_tenant", `signed for another tenant than ${expected.tenantId}`);
    }
    const expiresAt = Number(claims.expires) * 1000;
    const now = this.clock.now();
    if (now >= expiresAt) throw new DownloadUrlRejected("expired", `expired at ${new Date(expiresAt).toISOString()}`);
    // A lifetime longer than any this configuration signs means a signer elsewhere is misconfigured.
    if (expiresAt - now > this.maxTtlMs + 1000) throw new DownloadUrlRejected("expired", "expiry is further away than maxTtlMs allows");
    return { tenantId: claims.tenant, objectKey: claims.object, expiresAt, keyId: claims.kid };
  }

  private mac(secret: Buffer, claims: Omit<Claims, "sig">): string {
    // One field a line, fixed order, a version tag: no two claim sets share a string (no field holds a newline).
    const payload = ["bulkhead-download-v1", claims.kid, claims.tenant, claims.object, claims.expires].join("\n");
    return createHmac("sha256", secret).update(payload).digest("base64url");
  }
}

interface Claims {
  tenant: string;
  object: string;
  expires: string;
  kid: string;
  sig: string;
}

function parseClaims(raw: string | URL): Claims {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DownloadUrlRejected("malformed", "not a URL");
  }
  const get = (name: string) => {
    const values = url.searchParams.getAll(name);
    // A repeated parameter could be read one way here and another way by a proxy.
    if (values.length !== 1 || values[0] === "") throw new DownloadUrlRejected("malformed", `parameter ${name} must appear exactly once`);
    if (values[0]!.includes("\n")) throw new DownloadUrlRejected("malformed", `parameter ${name} contains a newline`);
    return values[0]!;
  };
  const claims = { tenant: get("tenant"), object: get("object"), expires: get("expires"), kid: get("kid"), sig: get("sig") };
  if (!/^\d{1,12}$/.test(claims.expires)) throw new DownloadUrlRejected("malformed", "expires must be epoch seconds");
  return claims;
}

function sameMac(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

function checkedKeys(keys: readonly SigningKey[]): Map<string, Buffer> {
  if (!Array.isArray(keys) || keys.length === 0) invalid("keys", "at least one signing key is required");
  const secrets = new Map<string, Buffer>();
  keys.forEach((key, i) => {
    if (typeof key?.id !== "string" || !KEY_ID.test(key.id)) invalid(`keys[${i}].id`, "letters, digits, _ and -, at most 64");
    if (secrets.has(key.id)) invalid(`keys[${i}].id`, `duplicate key id ${key.id}`);
    const secret = typeof key.secret === "string" ? Buffer.from(key.secret, "utf8") : Buffer.from(key.secret ?? []);
    if (secret.length < MIN_SECRET_BYTES) invalid(`keys[${i}].secret`, `must be at least ${MIN_SECRET_BYTES} bytes`);
    secrets.set(key.id, secret);
  });
  return secrets;
}

function checkedBaseUrl(raw: string): URL {
  try {
    const url = new URL(raw);
    if (url.search || url.hash) invalid("baseUrl", "must not carry a query or fragment");
    return url;
  } catch (error) {
    if (error instanceof TenantScopeError) throw error;
    return invalid("baseUrl", "not an absolute URL");
  }
}

function invalid(field: string, problem: string): never {
  throw new TenantScopeError("TENANT_SCOPE_INVALID", `${field}: ${problem}`, field);
}
