// Package clibase is what both passman programs run: the small front
// (cmd/passman), which serves scans and the version without linking the
// store, server, policy or rotation machinery, and the full program
// (cmd/passman-full, package cli). The commands they share (scan, version),
// the root command's common part, the exit codes and the error reporting
// live here once, so the two cannot answer differently.
package clibase

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// State is what one invocation's commands share: the environment and the
// output the -o flag chose. It lives for one run.
type State struct {
	Env Env
	// Output is the -o flag's value.
	Output string
	// Out is the printer for -o, set once the command is known.
	Out Printer
	// Started is set once cobra has parsed and validated the invocation
	// and handed over to our code: an error before that is a usage error.
	Started bool
}

// NewRoot returns the root command's part both programs share: its name,
// --version, -o, streams and error handling. The full program adds the
// rest of its flags, help and commands.
func NewRoot(s *State) *cobra.Command {
	root := &cobra.Command{
		Use:           "passman",
		Short:         "Manage encrypted, versioned, audited secrets",
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          GroupArgs,
		RunE:          GroupRun,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			s.Started = true
			f, err := ParseFormat(s.Output, cmd.Annotations[AnnotationFormats])
			if err != nil {
				return err
			}
			s.Out = Printer{Format: f, W: cmd.OutOrStdout()}
			return nil
		},
	}
	// --version answers as `passman version` does in text, the fastest
	// check that a passman is installed.
	root.Version = version
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetIn(s.Env.Stdin)
	root.SetOut(s.Env.Stdout)
	root.SetErr(s.Env.Stderr)
	root.SetFlagErrorFunc(flagError)
	root.PersistentFlags().StringVarP(&s.Output, "output", "o", string(FormatText), "output format: "+FormatNames())
	return root
}

// Run runs root with args and returns the process exit code; see
// ExitCodeHelp for their meanings. Errors are printed to Stderr as one
// "passman: <message>" line.
func Run(ctx context.Context, s *State, root *cobra.Command, args []string) int {
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if !s.Started && !IsUsage(err) {
		err = &UsageError{Err: err}
	}
	var re *ReportedError
	if !errors.As(err, &re) {
		fmt.Fprintf(s.Env.Stderr, "passman: %s\n", oneLine(err))
		if IsUsage(err) && cmd != nil {
			fmt.Fprintf(s.Env.Stderr, "run '%s --help' for usage\n", cmd.CommandPath())
		}
	}
	code := ExitCode(err)
	if IsUsage(err) && cmd != nil && cmd.Annotations[AnnotationUsageExit] != "" {
		code = ExitFailure
	}
	return code
}

// AnnotationUsageExit marks a command whose usage errors exit 1 rather than
// 2, because it gives 2 another meaning (plan: changes present).
const AnnotationUsageExit = "passman/usage-exit-1"

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue)
}

// oneLine joins the lines of a multi-line error (errors.Join) so every
// error is one line on stderr.
func oneLine(err error) string {
	msg := err.Error()
	if errors.Is(err, context.Canceled) {
		msg = "interrupted: " + msg
	}
	return strings.ReplaceAll(strings.TrimSpace(msg), "\n", "; ")
}

// GroupArgs lets a command group receive stray arguments so GroupRun can
// report them as an unknown command; cobra would otherwise print help and
// exit 0 for "passman secret bogus".
func GroupArgs(*cobra.Command, []string) error { return nil }

// GroupRun shows a group's help, or rejects an unknown subcommand.
func GroupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return UsageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
}

// flagError turns pflag's errors into usage errors. A --value flag gets an
// explanation rather than just "unknown flag": its absence is deliberate.
func flagError(_ *cobra.Command, err error) error {
	if strings.Contains(err.Error(), "--value") {
		return UsageErrorf("%w; values are never taken from arguments (they end up in shell history and process listings): pipe the value in or use --file or --generate", err)
	}
	return &UsageError{Err: err}
}

// ExactArgs is cobra.ExactArgs as a usage error naming the arguments. It
// never echoes the arguments: a user who types a value where the path goes
// must not see it copied to stderr and terminal logs.
func ExactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(names) == 0 && len(args) > 0 {
			return UsageErrorf("takes no arguments, got %d", len(args))
		}
		if len(args) != len(names) {
			return UsageErrorf("want %d argument(s) (%s), got %d", len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// RangeArgs accepts between min and max arguments, likewise without
// echoing them.
func RangeArgs(min, max int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return UsageErrorf("want %d to %d argument(s) (%s), got %d", min, max, names, len(args))
		}
		return nil
	}
}
