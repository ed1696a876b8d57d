import { readFileSync } from "node:fs";
import { connectionFlags, invokeAdmin, reportFailure, UsageError } from "./admin-command.js";

/**
 * `bulkhead flags list|show|put|kill|stale`: the flag subset of AdminService
 * in words an owner uses. Every call is an AdminService call with the
 * caller's token, so the CLI can do nothing the API would refuse.
 */
export const FLAGS_USAGE = `bulkhead flags - feature flags over AdminService (audited like the API)

Usage:
  bulkhead flags list                          every flag: key, kind, owner, risk, state
  bulkhead flags show KEY                      one flag as JSON (the shape put takes)
  bulkhead flags put FILE|- --reason R [--approval-id ID]
                                               create or replace a flag from JSON (docs/flags.md)
  bulkhead flags kill KEY --reason R [--off]   throw (or, with --off, lift) the kill switch
  bulkhead flags stale [--unused-days N]       flags past their cleanup date, fully on too long,
                                               or not evaluated for more than N days (default 30)

Connection flags as for bulkhead admin: --addr, --token-file, --token, --db, --as.
`;

interface FlagSummary {
  key: string;
  flag_json: string;
  stale_reasons: string[];
}

export async function flagsCommand(args: string[]): Promise<number> {
  const [sub, ...tail] = args;
  if (!sub || sub === "--help" || sub === "-h") {
    (sub ? process.stdout : process.stderr).write(FLAGS_USAGE);
    return sub ? 0 : 2;
  }
  try {
    const { connection, rest } = connectionFlags(tail);
    const option = (name: string) => {
      const i = rest.indexOf(`--${name}`);
      if (i < 0) return undefined;
      const value = rest[i + 1];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`--${name} needs a value`);
      return value;
    };
    const positional = rest.find((a, i) => !a.startsWith("--") && !(i > 0 && ["--reason", "--approval-id", "--unused-days"].includes(rest[i - 1]!)));
    const list = async (staleOnly: boolean, unusedDays = 0) =>
      ((await invokeAdmin("ListFlags", { stale_only: staleOnly, unused_days: unusedDays }, connection)) as { flags: FlagSummary[] }).flags;
    switch (sub) {
      case "list":
        for (const f of await list(false)) {
          const flag = JSON.parse(f.flag_json) as { kind: string; owner: string; risk: string; enabled: boolean; killed: boolean };
          const state = flag.killed ? "KILLED" : flag.enabled ? "enabled" : "disabled";
          console.log([f.key, flag.kind, flag.owner, flag.risk, state].join("\t"));
        }
        return 0;
      case "show": {
        if (!positional) throw new UsageError("name the flag: bulkhead flags show KEY");
        const found = (await list(false)).find((f) => f.key === positional);
        if (!found) {
          process.stderr.write(`bulkhead flags show: no flag ${positional}\n`);
          return 1;
        }
        console.log(JSON.stringify(JSON.parse(found.flag_json), null, 2));
        return 0;
      }
      case "put": {
        if (!positional) throw new UsageError("name the JSON file (or - for stdin): bulkhead flags put FILE --reason R");
        const flagJson = readFileSync(positional === "-" ? 0 : positional, "utf8");
        const response = await invokeAdmin("PutFlag", { flag_json: flagJson, reason: option("reason") ?? "", approval_id: option("approval-id") ?? "" }, connection);
        console.log(JSON.stringify(response));
        return 0;
      }
      case "kill": {
        if (!positional) throw new UsageError("name the flag: bulkhead flags kill KEY --reason R");
        const response = await invokeAdmin("SetKillSwitch", { key: positional, killed: !rest.includes("--off"), reason: option("reason") ?? "" }, connection);
        console.log(JSON.stringify(response));
        return 0;
      }
      case "stale":
        for (const f of await list(true, unusedDaysOption(option("unused-days")))) console.log(`${f.key}\t${f.stale_reasons.join("; ")}`);
        return 0;
      default:
        process.stderr.write(`bulkhead flags: unknown command '${sub}'\n\n${FLAGS_USAGE}`);
        return 2;
    }
  } catch (error) {
    return reportFailure(`bulkhead flags ${sub}`, error);
  }
}

/** `--unused-days N`: 1 to 3650 in decimal digits; absent = the server's default (0 on the wire). */
function unusedDaysOption(value: string | undefined): number {
  if (value === undefined) return 0;
  const days = /^[0-9]{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(days >= 1 && days <= 3650)) throw new UsageError(`--unused-days ${value}: must be a whole number of days from 1 to 3650`);
  return days;
}
