import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SUBCOMMANDS } from "../../src/cli/completion.js";
import { PACKAGE_ROOT } from "../../src/paths.js";

// Every command and subcommand a user can type answers --help with usage and
// exit 0 (never "Unknown option"), and the completion script offers them.
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const bulkhead = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};

describe("bulkhead --help everywhere", () => {
  const lines = Object.entries(SUBCOMMANDS).filter(([command]) => command !== "version" && command !== "help").flatMap(([command, subs]) => [[command], ...subs.map((s) => [command, s])]);
  it.each(lines.map((l) => [l.join(" "), l] as const))("%s --help", (_name, line) => {
    const result = bulkhead(...line, "--help");
    expect(result.status, result.out).toBe(0);
    expect(result.out).toMatch(/usage|Usage|bulkhead/);
    expect(result.out).not.toMatch(/Unknown option/);
  });

  it("the bash completion script completes commands and subcommands", () => {
    const script = bulkhead("completion", "bash");
    expect(script.status).toBe(0);
    const complete = (words: string[]) =>
      spawnSync("bash", ["-c", `${script.out}\nCOMP_WORDS=(${words.join(" ")}); COMP_CWORD=${words.length - 1}; _bulkhead; echo "\${COMPREPLY[@]}"`], { encoding: "utf8" }).stdout.trim();
    expect(complete(["bulkhead", "pol"])).toBe("policy");
    expect(complete(["bulkhead", "policy", "ex"])).toBe("explain");
    expect(complete(["bulkhead", "flags", "st"]).split(" ")).toEqual(["stale"]);
    expect(bulkhead("completion", "fish").status).toBe(2);
  });
});
