import { randomBytes } from "node:crypto";
import { keyedHash } from "./key-secret.js";

/** Staff tokens look like `bk_staff_<43 chars>`; only their keyed hash is stored. */
const TOKEN_FORMAT = /^bk_staff_[A-Za-z0-9_-]{43}$/;

export function newStaffToken(serverSecret: Buffer): { raw: string; hash: string } {
  const raw = `bk_staff_${randomBytes(32).toString("base64url")}`;
  return { raw, hash: keyedHash(serverSecret, raw) };
}

/** The hash to look a presented token up by, or null when it cannot be a staff token. */
export function staffTokenHash(serverSecret: Buffer, raw: string): string | null {
  return TOKEN_FORMAT.test(raw) ? keyedHash(serverSecret, raw) : null;
}
