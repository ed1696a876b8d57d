#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import { secretScrubber } from "../log/secret-scrubber.js";
import { PACKAGE_ROOT } from "../paths.js";
import { USAGE } from "./usage.js";

type Command = (args: string[]) => Promise<number>;

// Each subcommand is imported only when it runs: a dependency of one command
// (yaml for xtest suites, the Stripe client for billing) can never stop
// another from starting, and `serve` loads no CLI-only code.
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import("./serve-command.js")).serveCommand,
  policy: async () => (await import("./policy-command.js")).policyCommand,
  xtest: async () => (await import("./xtest-command.js")).xtestCommand,
  billing: async () => (await import("./billing-command.js")).billingCommand,
  admin: async () => (await import("./admin-command.js")).adminCommand,
  flags: async () => (await import("./flags-command.js")).flagsCommand,
  audit: async () => (await import("./audit-command.js")).auditCommand,
  doctor: async () => (await import("./doctor-command.js")).doctorCommand,
  decisions: async () => (await import("./decisions-command.js")).decisionsCommand,
  completion: async () => (await import("./completion.js")).completionCommand,
  cluster: async () => (await import("./cluster-command.js")).clusterCommand,
};


// Commands whose subcommands print their own help; every other command
// answers `--help` anywhere on its line with its usage, which lists its
// subcommands, instead of treating it as an unknown option.
const OWN_SUBCOMMAND_HELP = new Set(["serve", "policy"]);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const load = command === undefined ? undefined : COMMANDS[command];
  if (load && !OWN_SUBCOMMAND_HELP.has(command!) && rest.some((a) => a === "--help" || a === "-h")) return (await load())(["--help"]);
  if (load) return (await load())(rest);
  switch (command) {
    case "--version":
    case "version":
      console.log(JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")).version);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`bulkhead: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // parseArgs throws TypeErrors with an ERR_PARSE_ARGS_* code for bad flags.
    if (error instanceof UsageError || (error instanceof TypeError && "code" in error)) {
      // A bad setting's message may quote its value (a URL with a password): scrubbed like a log line.
      console.error(`bulkhead: ${secretScrubber([])(error.message)}`);
      process.exit(2);
    }
    console.error(`bulkhead: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
