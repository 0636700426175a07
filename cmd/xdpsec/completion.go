package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The scripts ask the binary itself for the candidates: urfave/cli answers
// --generate-bash-completion with the commands or flags that may follow.
const bashCompletion = `# bash completion for xdpsec: source <(xdpsec completion bash)
_xdpsec_complete() {
	local cur="${COMP_WORDS[COMP_CWORD]}" opts
	if [[ "$cur" == -* ]]; then
		opts=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		opts=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _xdpsec_complete xdpsec
`

const zshCompletion = `#compdef xdpsec
# zsh completion for xdpsec: source <(xdpsec completion zsh)
_xdpsec() {
	local -a opts
	local cur=${words[-1]}
	if [[ "$cur" == -* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" --generate-bash-completion 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
	fi
	if [[ -n "${opts[1]}" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
compdef _xdpsec xdpsec
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash or zsh (source <(xdpsec completion bash))",
		ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			switch sh := c.Args().First(); sh {
			case "bash":
				_, err := fmt.Fprint(c.App.Writer, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(c.App.Writer, zshCompletion)
				return err
			default:
				return fmt.Errorf("completion %q: want bash or zsh", sh)
			}
		},
	}
}
