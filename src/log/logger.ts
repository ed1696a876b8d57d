import { pino, stdSerializers, type DestinationStream } from "pino";
import { secretScrubber } from "./secret-scrubber.js";

import type { LogLevel } from "./log-levels.js";
import { SECRET_SETTINGS } from "../config.js";

/**
 * What the serve path logs through. pino's Logger satisfies it; modules take
 * this narrow shape so they never depend on pino itself.
 */
export interface Logger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
  isLevelEnabled(level: string): boolean;
  child(bindings: Record<string, unknown>): Logger;
}

/**
 * Fields that carry credentials wherever they are logged. The first layer of
 * redaction: a field named here prints as "[Redacted]". The second layer
 * (secret-scrubber.ts) catches the values themselves in any text.
 */
export const REDACT_PATHS = [
  "authorization",
  "*.authorization",
  'headers["stripe-signature"]',
  "apiKey",
  "*.apiKey",
  "principal.apiKey",
  "request.principal.apiKey",
  "token",
  "*.token",
  ...SECRET_SETTINGS,
  ...SECRET_SETTINGS.map((key) => `config.${key}`),
];

export interface LoggerOptions {
  level: LogLevel;
  /** The running build (BULKHEAD_DEPLOYMENT_SHA), on every line so a regression is tied to a deploy. */
  deploymentSha?: string | undefined;
  /** `primary` or the cluster worker's id under `serve --workers N`; absent in a single process. */
  worker?: string | number | undefined;
  /** Configured credential values that must never reach a line (caller, admin and sync tokens, Stripe key and secrets). */
  secrets: readonly string[];
  /** Default: stdout, written synchronously so a line logged just before exit is not lost. */
  destination?: DestinationStream;
}

/** JSON lines: `level` as its name, `time` as ISO 8601, `msg`, and the fields of the call. */
export function createLogger(options: LoggerOptions): Logger {
  const base: Record<string, unknown> = { pid: process.pid };
  if (options.worker !== undefined) base.worker = options.worker;
  if (options.deploymentSha) base.deploymentSha = options.deploymentSha;
  return pino(
    {
      level: options.level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: stdSerializers.errWithCause },
      redact: { paths: REDACT_PATHS, censor: "[Redacted]" },
      hooks: { streamWrite: secretScrubber(options.secrets) },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** The `(message) => void` many modules log through, over a logger: info lines with that message. */
export function messageLog(logger: Logger): (message: string) => void {
  return (message) => logger.info({}, message);
}

/**
 * A logger over a message function, for embedders and tests that hand the
 * composition root `log` rather than a logger: every level reaches it as text.
 */
export function loggerOverMessages(log: (message: string) => void, bindings: Record<string, unknown> = {}): Logger {
  const write = (level: string) => (fields: object, message: string) => {
    const all = { ...bindings, ...fields };
    log(Object.keys(all).length === 0 ? message : `${message} ${level} ${JSON.stringify(all, (key, value) => (key === "err" ? String(value) : value))}`);
  };
  return {
    error: write("error"),
    warn: write("warn"),
    info: write("info"),
    debug: () => {},
    isLevelEnabled: (level) => level !== "debug" && level !== "trace",
    child: (more) => loggerOverMessages(log, { ...bindings, ...more }),
  };
}
