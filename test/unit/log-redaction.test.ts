import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/logger.js";

// The two layers of log redaction (src/log/logger.ts, secret-scrubber.ts) on
// a real pino logger writing into memory: the e2e test (serve-logs) sees only
// what serve happens to log; this one puts credentials where a future log
// call might, in known fields and in free text.
const CONFIGURED = "caller-token-unit-4f2a9c";
const API_KEY = `bk_key_01M8XZTMZEYYRS4TM2WR7C9P8V.${"k".repeat(43)}`;

function capture(secrets: string[] = [CONFIGURED]) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ level: "info", secrets, destination });
  return { logger, text: () => lines.join("") };
}

describe("log redaction", () => {
  it("censors credential fields by name, in the configuration and in call fields", () => {
    const { logger, text } = capture();
    logger.info({ config: { callerTokens: [CONFIGURED], stripeWebhookSecrets: ["whsec_abcdef123456"], grpcAddr: "127.0.0.1:1" } }, "configuration loaded");
    logger.info({ request: { principal: { apiKey: API_KEY } }, metadata: { authorization: "Bearer opaque-unconfigured-value" } }, "call");
    const [config, call] = text().trim().split("\n").map((l) => JSON.parse(l));
    expect(config.config).toMatchObject({ callerTokens: "[Redacted]", stripeWebhookSecrets: "[Redacted]", grpcAddr: "127.0.0.1:1" });
    expect(call.request.principal.apiKey).toBe("[Redacted]");
    expect(call.metadata.authorization).toBe("[Redacted]");
  });

  it("scrubs credential values from any text: messages, errors and their causes, fields nobody listed", () => {
    const { logger, text } = capture();
    const cause = new Error(`upstream said: bad key ${API_KEY}`);
    logger.error({ err: new Error(`refused Bearer ${CONFIGURED}`, { cause }), note: `sk_live_${"a".repeat(24)} and rk_test_${"b".repeat(24)} and whsec_${"c".repeat(32)}` }, `token ${CONFIGURED} and "quoted\\" ${CONFIGURED}"`);
    const out = text();
    for (const secret of [CONFIGURED, "k".repeat(43), "a".repeat(24), "b".repeat(24), "c".repeat(32)]) expect(out, secret).not.toContain(secret);
    // What is left says what was there: the key's public id, the kind of Stripe credential.
    expect(out).toContain("bk_key_01M8XZTMZEYYRS4TM2WR7C9P8V.[Redacted]");
    expect(out).toContain("sk_live_[Redacted]");
    expect(JSON.parse(out).err.cause.message).toBe("upstream said: bad key bk_key_01M8XZTMZEYYRS4TM2WR7C9P8V.[Redacted]");
  });

  it("scrubs the user:password of a URL (a NATS or collector URL in the configuration)", () => {
    const { logger, text } = capture();
    logger.info({ config: { replication: { natsServers: ["nats://bulkhead:s3cret-pass@nats-1:4222", "nats://nats-2:4222"] } } }, "configuration loaded");
    const out = text();
    expect(out).not.toContain("s3cret-pass");
    expect(out).not.toContain("bulkhead:");
    expect(JSON.parse(out).config.replication.natsServers).toEqual(["nats://[Redacted]@nats-1:4222", "nats://nats-2:4222"]);
  });

  it.each(['https://u:p"wsecret@c/logs', "https://u:p wsecret@c/logs", "https://u:pw@secret@c/logs"])("scrubs a URL password holding a quote, a space or an @: %s", (url) => {
    const { logger, text } = capture();
    logger.info({ config: { decisionSinks: { url } } }, `sink at ${url}`);
    expect(text()).not.toContain("secret");
    expect(text()).toContain("https://[Redacted]@c/logs");
  });

  it("leaves short configured values alone rather than garble unrelated text", () => {
    const { logger, text } = capture(["abc"]);
    logger.info({ tabcd: "abc" }, "abc");
    expect(JSON.parse(text())).toMatchObject({ msg: "abc", tabcd: "abc" });
  });
});
