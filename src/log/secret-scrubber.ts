/**
 * The second layer of log redaction, after pino's redact paths: whatever
 * field or message a credential ends up in (an error message quoting a
 * header, a new log call nobody listed), its value is replaced before the
 * line is written. Runs on every written line, so it does no more than a
 * few `includes` for the configured values and one regex pass.
 */

/**
 * Shapes of credentials whose values are not configured: API keys (their secret part), bearer headers,
 * Stripe keys and signing secrets, and the user:password of a URL (nats://user:pass@host), up to
 * the last "@" before the host as a URL parser reads it, so a password holding "@" or a quote is
 * covered too; when in doubt this redacts more, never less.
 */
const CREDENTIAL_SHAPES = /(bk_key_[0-9A-Z]{26}\.)[A-Za-z0-9_-]{43}|(Bearer )[^\s"\\]+|\b((?:sk|rk)_(?:live|test)_|whsec_)[A-Za-z0-9]+|(\b[a-z][a-z0-9+.-]*:\/\/)[^/?#]*(?=@[^@/?#\s"]*(?:[/?#\s"]|$))/g;

/**
 * Shorter configured values are not searched for: replacing a 3-character
 * token everywhere would garble unrelated text and JSON keys.
 */
const MIN_SECRET_LENGTH = 6;

export const SCRUBBED = "[Redacted]";

/** A line filter that replaces the given secret values (as written, and as escaped inside a JSON string) and credential shapes. */
export function secretScrubber(secrets: readonly string[]): (line: string) => string {
  const needles = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH).flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]))];
  return (line) => {
    let out = line.replace(
      CREDENTIAL_SHAPES,
      (_match, keyId?: string, bearer?: string, stripePrefix?: string, scheme?: string) => `${keyId ?? bearer ?? stripePrefix ?? scheme ?? ""}${SCRUBBED}`,
    );
    for (const needle of needles) if (out.includes(needle)) out = out.replaceAll(needle, SCRUBBED);
    return out;
  };
}
