import { createHmac, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * The server secret API-key hashes are keyed with: BULKHEAD_KEY_SECRET, or a
 * random one generated once into `key.secret` beside the database (mode
 * 0600), so every process sharing the database verifies the same keys.
 */
export function loadKeySecret(dbPath: string, fromEnv: string | undefined): Buffer {
  if (fromEnv) return Buffer.from(fromEnv, "utf8");
  if (dbPath === ":memory:") return randomBytes(32);
  const file = join(dirname(dbPath), "key.secret");
  if (!existsSync(file)) {
    try {
      writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600, flag: "wx" });
    } catch (error) {
      // Another process created it first; read theirs.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  return Buffer.from(readFileSync(file, "utf8").trim(), "utf8");
}

/** The keyed hash secrets (API keys, staff tokens) are stored as; hex. */
export function keyedHash(serverSecret: Buffer, raw: string): string {
  return createHmac("sha256", serverSecret).update(raw).digest("hex");
}

/**
 * What a replicated stream records of the key secret (ADR 77): an HMAC of a
 * fixed string, so peers can tell they share the secret without the secret
 * ever leaving the process. Hashes in commands are keyed with it, so a
 * sidecar with another secret would reject every key its peers issued.
 */
export function keySecretFingerprint(serverSecret: Buffer): string {
  return keyedHash(serverSecret, "bulkhead key secret fingerprint v1");
}
