import { readFileSync } from "node:fs";
import { ConfigError, ENV_VARS, OTHER_ENV_VARS, rejectUnknownVariables } from "./config.js";

/**
 * Where a setting comes from, highest first: a flag, the environment, the
 * config file (`--config FILE` or `BULKHEAD_CONFIG`), the default. Every
 * BULKHEAD_* variable has a flag, named by the variable (BULKHEAD_GRPC_ADDR
 * is `--grpc-addr`), and is a key of the config file, so the three can never
 * disagree on names; `loadConfig` then validates one merged environment,
 * one rule per setting whatever its source.
 */
export type SettingSource = "flag" | "env" | "file";

/** Settings with a flag: every variable but the cluster's internal one. */
export const SETTING_NAMES: readonly string[] = [...Object.keys(ENV_VARS), ...OTHER_ENV_VARS.filter((name) => name !== "BULKHEAD_WORKER_OF" && name !== "BULKHEAD_CONFIG")];

/** Flags that are on/off rather than a value. */
const BOOLEAN_SETTINGS: ReadonlySet<string> = new Set(["BULKHEAD_DEMO", "BULKHEAD_CONSOLE"]);

/** BULKHEAD_GRPC_ADDR -> grpc-addr. */
export function flagOf(name: string): string {
  return name.slice("BULKHEAD_".length).toLowerCase().replaceAll("_", "-");
}

/** parseArgs options for every setting, plus `--config`. */
export const SETTING_OPTIONS: Record<string, { type: "string" | "boolean" }> = {
  config: { type: "string" },
  ...Object.fromEntries(SETTING_NAMES.map((name) => [flagOf(name), { type: BOOLEAN_SETTINGS.has(name) ? "boolean" : "string" }])),
};

export interface ResolvedSettings {
  /** The environment loadConfig reads: each setting's winning value. */
  env: NodeJS.ProcessEnv;
  sources: Record<string, SettingSource>;
  /** The config file read, if any. */
  file: string | undefined;
}

/** Merges flags, the environment and the config file into one environment, recording each setting's source. */
export function resolveSettings(env: NodeJS.ProcessEnv, flags: Record<string, string | boolean | undefined>): ResolvedSettings {
  const file = typeof flags.config === "string" ? flags.config : env.BULKHEAD_CONFIG || undefined;
  const fromFile = file ? readConfigFile(file) : {};
  const merged: NodeJS.ProcessEnv = { ...env };
  delete merged.BULKHEAD_CONFIG;
  const sources: Record<string, SettingSource> = {};
  for (const name of SETTING_NAMES) {
    const flag = flags[flagOf(name)];
    if (flag !== undefined) {
      merged[name] = flag === true ? "1" : flag === false ? "" : flag;
      sources[name] = "flag";
    } else if (env[name]) {
      sources[name] = "env";
    } else if (fromFile[name] !== undefined) {
      merged[name] = fromFile[name];
      sources[name] = "file";
    }
  }
  return { env: merged, sources, file };
}

/**
 * A JSON object whose keys are the variables' names (the same spelling as
 * the environment, so a setting is found by one grep); values are strings,
 * numbers, booleans or lists (joined with commas, as the variables take
 * them). An unknown key is an error with the nearest name, as for the
 * environment. Keep secrets here (mode 0600) rather than in flags, which
 * every user of the machine can read in `ps`.
 */
function readConfigFile(path: string): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    // JSON.parse's own message quotes the text around the fault, which may be a secret: never shown.
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : error instanceof SyntaxError ? "is not valid JSON (check its quotes, commas and brackets)" : `cannot be read (${code ?? "error"})`;
    throw new ConfigError(`config file ${path} (--config / BULKHEAD_CONFIG): ${why}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError(`config file ${path}: must be a JSON object of BULKHEAD_* settings`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!key.startsWith("BULKHEAD_")) throw new ConfigError(`config file ${path}: '${key}' is not a setting (keys are the variables' names, such as BULKHEAD_GRPC_ADDR)`);
    if (key === "BULKHEAD_CONFIG" || key === "BULKHEAD_WORKER_OF") throw new ConfigError(`config file ${path}: ${key} cannot be set in a config file`);
    if (Array.isArray(value) && value.every((v) => typeof v === "string" || typeof v === "number")) out[key] = value.join(",");
    else if (typeof value === "string" || typeof value === "number") out[key] = String(value);
    else if (typeof value === "boolean") out[key] = value ? "1" : "";
    else throw new ConfigError(`config file ${path}: ${key} must be a string, number, boolean or list`);
  }
  try {
    rejectUnknownVariables(out);
  } catch (error) {
    throw new ConfigError(`config file ${path}: ${(error as Error).message.replace("unknown environment variable", "unknown setting")}`);
  }
  return out;
}
