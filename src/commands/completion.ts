import type { Command, OptionSpec } from './shared.js';

/** The long and short names in an option's flags: `-j, --jobs <N>` → `-j --jobs`. */
function optionNames(option: OptionSpec): string[] {
  return option.flags.split(/[ ,|]+/).filter((word) => word.startsWith('-'));
}

/**
 * A bash completion function generated from the commands' own option lists, so it never
 * drifts from them: the command names first, then that command's options (`-` typed) or file
 * names. zsh loads the same function through bashcompinit.
 */
export function completionScript(shell: 'bash' | 'zsh', commands: readonly Command[]): string {
  const cases = commands.map((c) => `    ${c.name}) opts="${['--help', ...c.options.flatMap(optionNames)].join(' ')}" ;;`).join('\n');
  const body = `# ablate ${shell} completion: ablate completion ${shell} >> ~/.${shell}rc
_ablate_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${commands.map((c) => c.name).join(' ')} --help --version" -- "$cur") )
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$opts" -- "$cur") ); else COMPREPLY=( $(compgen -f -- "$cur") ); fi
}
complete -o default -F _ablate_complete ablate
`;
  return shell === 'zsh' ? `autoload -U +X bashcompinit && bashcompinit\n${body}` : body;
}
