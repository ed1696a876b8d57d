import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { UsageError } from "../errors.js";
import type { Db } from "../store/database.js";
import { AUDIT_CHAIN_NAMES, type AuditChainName } from "./audit-chain.js";
import { readAnchor } from "./audit-anchor.js";

/** Where a chain stood: its last row, that row's hash, and how many hashed rows lead to it. */
export interface ChainPoint {
  rowId: number;
  hash: string;
  records: number;
}

/**
 * A checkpoint commits to the head of every audit chain at one moment.
 * Signed with an Ed25519 key and kept off-host (a log shipper, object
 * storage with retention lock), it lets `bulkhead audit verify` prove that
 * nothing up to it was removed or rewritten, which a chain alone cannot.
 */
export interface Checkpoint {
  version: 1;
  at: string;
  chains: Record<AuditChainName, ChainPoint>;
  signature?: { algorithm: "ed25519"; keyId: string; value: string };
}

/** The current head of each chain (rowid 0 and hash "" for an empty one). */
export function takeCheckpoint(db: Db, now: Date, privateKeyPem?: string): Checkpoint {
  const chains = {} as Record<AuditChainName, ChainPoint>;
  db.transaction(() => {
    for (const chain of AUDIT_CHAIN_NAMES) {
      const head = db.prepare(`SELECT rowid AS rowId, chain_hash AS hash FROM ${chain} WHERE chain_hash IS NOT NULL ORDER BY rowid DESC LIMIT 1`).get() as
        | { rowId: number; hash: string }
        | undefined;
      const records = db.prepare(`SELECT count(*) FROM ${chain} WHERE chain_hash IS NOT NULL`).pluck().get() as number;
      // Rows retention pruned still count: a chain's record count only grows (ADR 57).
      const anchor = readAnchor(db, chain);
      chains[chain] = { rowId: head?.rowId ?? anchor?.rowId ?? 0, hash: head?.hash ?? anchor?.hash ?? "", records: records + (anchor?.records ?? 0) };
    }
  })();
  const checkpoint: Checkpoint = { version: 1, at: now.toISOString(), chains };
  if (privateKeyPem === undefined) return checkpoint;
  const key = readPrivateKey(privateKeyPem, "--key");
  return { ...checkpoint, signature: { algorithm: "ed25519", keyId: keyId(createPublicKey(key)), value: sign(null, signedBytes(checkpoint), key).toString("base64") } };
}

/** Parses a checkpoint file's text; errors say what is wrong with it. */
export function parseCheckpoint(text: string, source: string): Checkpoint {
  let parsed: Checkpoint;
  try {
    parsed = JSON.parse(text) as Checkpoint;
  } catch (error) {
    throw new UsageError(`${source}: not a checkpoint (not JSON: ${(error as Error).message})`);
  }
  if (parsed?.version !== 1 || typeof parsed.chains !== "object" || parsed.chains === null) throw new UsageError(`${source}: not a version 1 checkpoint`);
  for (const chain of AUDIT_CHAIN_NAMES) {
    const point = parsed.chains[chain];
    if (!point || !Number.isInteger(point.rowId) || typeof point.hash !== "string") throw new UsageError(`${source}: chains.${chain} needs rowId and hash`);
  }
  return parsed;
}

/** Checks the signature against `publicKeyPem`; null when it holds, else why not. */
export function checkSignature(checkpoint: Checkpoint, publicKeyPem: string): string | null {
  if (!checkpoint.signature) return "the checkpoint is not signed";
  const key = readKey(() => createPublicKey(publicKeyPem), "--public-key");
  if (checkpoint.signature.keyId !== keyId(key)) return `the checkpoint was signed by key ${checkpoint.signature.keyId}, not by this public key (${keyId(key)})`;
  const { signature, ...payload } = checkpoint;
  return verify(null, signedBytes(payload), key, Buffer.from(signature.value, "base64")) ? null : "the checkpoint's signature does not match its contents";
}

/** What is signed: the checkpoint without its signature, with keys in a fixed order. */
function signedBytes(checkpoint: Omit<Checkpoint, "signature">): Buffer {
  const chains = Object.fromEntries(AUDIT_CHAIN_NAMES.map((c) => [c, { rowId: checkpoint.chains[c].rowId, hash: checkpoint.chains[c].hash, records: checkpoint.chains[c].records }]));
  return Buffer.from(JSON.stringify({ version: checkpoint.version, at: checkpoint.at, chains }));
}

function keyId(publicKey: KeyObject): string {
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 16);
}

/** An Ed25519 private key from PEM; `source` (a flag or variable) names it in the error. */
export function readPrivateKey(pem: string, source: string): KeyObject {
  return readKey(() => createPrivateKey(pem), source);
}

function readKey(read: () => KeyObject, flag: string): KeyObject {
  let key: KeyObject;
  try {
    key = read();
  } catch (error) {
    throw new UsageError(`${flag}: not a PEM key (${(error as Error).message})`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new UsageError(`${flag}: an Ed25519 key is needed, this one is ${key.asymmetricKeyType}`);
  return key;
}
