import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * AdminService always needs a credential. BULKHEAD_ADMIN_TOKEN (comma-separated)
 * wins; otherwise a random token is generated once into `admin.token` beside
 * the database (mode 0600) and its path is reported, never its value.
 */
export function loadAdminTokens(dbPath: string, fromEnv: string | undefined, log: (m: string) => void): string[] {
  const configured = (fromEnv ?? "").split(",").map((t) => t.trim()).filter(Boolean);
  if (configured.length > 0) return configured;
  if (dbPath === ":memory:") return [randomBytes(24).toString("base64url")];
  const file = join(dirname(dbPath), "admin.token");
  if (!existsSync(file)) {
    try {
      writeFileSync(file, randomBytes(24).toString("base64url"), { mode: 0o600, flag: "wx" });
      log(`generated an admin token in ${file} (mode 0600); AdminService calls need it as a bearer token`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  return [readFileSync(file, "utf8").trim()];
}
