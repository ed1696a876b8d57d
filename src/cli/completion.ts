import { UsageError } from "../errors.js";

/**
 * `bulkhead completion bash|zsh`: a completion script for the commands and
 * their subcommands. Install with
 *   bulkhead completion bash > /etc/bash_completion.d/bulkhead    (or source it from ~/.bashrc)
 *   bulkhead completion zsh > "${fpath[1]}/_bulkhead"
 */
export const SUBCOMMANDS: Record<string, string[]> = {
  serve: [],
  policy: ["build", "test", "diff", "explain"],
  xtest: ["seed"],
  billing: ["reconcile", "replay", "recalculate", "events"],
  admin: [],
  flags: ["list", "show", "put", "kill", "stale"],
  audit: ["verify", "checkpoint", "export"],
  decisions: ["query", "tail"],
  cluster: ["import"],
  doctor: [],
  completion: ["bash", "zsh"],
  version: [],
  help: [],
};

export async function completionCommand(args: string[]): Promise<number> {
  const [shell] = args;
  if (shell === "--help" || shell === "-h") {
    process.stdout.write("bulkhead completion bash|zsh - print a shell completion script\n  bulkhead completion bash > /etc/bash_completion.d/bulkhead\n  source <(bulkhead completion bash)\n");
    return 0;
  }
  if (shell !== "bash" && shell !== "zsh") throw new UsageError(`completion: name a shell, bash or zsh (got '${shell ?? ""}')`);
  const cases = Object.entries(SUBCOMMANDS)
    .filter(([, subs]) => subs.length > 0)
    .map(([command, subs]) => `    ${command}) COMPREPLY=($(compgen -W "${subs.join(" ")} --help" -- "$cur")) ;;`)
    .join("\n");
  const bash = `# bulkhead completion for bash (bulkhead completion bash)
_bulkhead() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${Object.keys(SUBCOMMANDS).join(" ")} --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
    *) COMPREPLY=($(compgen -f -- "$cur")) ;;
  esac
}
complete -F _bulkhead bulkhead
`;
  process.stdout.write(shell === "bash" ? bash : `#compdef bulkhead\n# bulkhead completion for zsh (bulkhead completion zsh)\nautoload -U bashcompinit && bashcompinit\n${bash}`);
  return 0;
}
