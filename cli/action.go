package cli

import (
	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/action"
	"github.com/passman-dev/passman/internal/clibase"
)

// newActionCmd is the GitHub Action's entry point (action.yml runs
// `passman action run`, and `passman action post` as its post step): the
// inputs come from INPUT_* variables, not flags. It is hidden: outside a
// workflow it has nothing to read.
func newActionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:       "action run|post",
		Short:     "Run the GitHub Action (inside a workflow step)",
		Hidden:    true,
		Args:      clibase.ExactArgs("run|post"),
		ValidArgs: []string{"run", "post"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "run" && args[0] != "post" {
				return clibase.UsageErrorf("want run or post")
			}
			code := action.Main(cmd.Context(), args, action.Env{Getenv: a.Env.Getenv, Stdout: a.Env.Stdout})
			if code != action.ExitOK {
				return &clibase.ReportedError{Code: code, Msg: "action failed"}
			}
			return nil
		},
	}
}
