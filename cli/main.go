// Package cli is passman's command-line front end. It translates flags and
// arguments into calls on passman.Service (or, for store and key
// administration, on package core) and results into text or JSON; it holds
// no business logic. Main is the whole entry point, so tests run the real
// command tree in-process with their own streams and environment.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/passman-dev/passman/core"
)

// Env is the process environment a command runs in. Tests build their own;
// OSEnv returns the real one.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads an environment variable; nil reads none.
	Getenv func(string) string
	// StdinIsTerminal reports whether Stdin is an interactive terminal, in
	// which case secret put refuses to wait for a value; nil means never.
	StdinIsTerminal func() bool
	// StderrIsTerminal reports whether Stderr is a terminal, where long
	// scans draw progress; nil means never.
	StderrIsTerminal func() bool
	// Now is the clock for relative times such as --since 1h; nil means
	// time.Now.
	Now func() time.Time
}

// OSEnv returns the environment of the running process.
func OSEnv() Env {
	return Env{
		Stdin:            os.Stdin,
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Getenv:           os.Getenv,
		StdinIsTerminal:  func() bool { return term.IsTerminal(int(os.Stdin.Fd())) },
		StderrIsTerminal: func() bool { return term.IsTerminal(int(os.Stderr.Fd())) },
	}
}

func (e Env) getenv(name string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(name)
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// app is the state one invocation shares between its commands: the
// environment and the global flags. It lives for one call of Main.
type app struct {
	env   Env
	flags globalFlags
	out   printer
	// started is set once cobra has parsed and validated the invocation and
	// handed over to our code: an error before that is a usage error.
	started bool
	// authz is a policy engine a command built for itself and hands to the
	// store it opens (see config.authz).
	authz core.Authorizer
}

// Main runs passman with args (without the program name) and returns the
// process exit code; see exitCodeHelp for their meanings. Errors are
// printed to env.Stderr as one "passman: <message>" line.
func Main(ctx context.Context, args []string, env Env) int {
	a := &app{env: env}
	root := newRootCmd(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if !a.started && !isUsage(err) {
		err = &usageError{err: err}
	}
	var re *reportedError
	if !errors.As(err, &re) {
		fmt.Fprintf(env.Stderr, "passman: %s\n", oneLine(err))
		if isUsage(err) && cmd != nil {
			fmt.Fprintf(env.Stderr, "run '%s --help' for usage\n", cmd.CommandPath())
		}
	}
	code := exitCode(err)
	if isUsage(err) && cmd != nil && cmd.Annotations[annotationUsageExit] != "" {
		code = ExitFailure
	}
	return code
}

// annotationUsageExit marks a command whose usage errors exit 1 rather than
// 2, because it gives 2 another meaning (plan: changes present).
const annotationUsageExit = "passman/usage-exit-1"

func isUsage(err error) bool {
	var ue *usageError
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

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "passman",
		Short: "Manage encrypted, versioned, audited secrets",
		Long: `passman stores secrets encrypted in a local store, keeps their version
history, and records every operation in a hash-chained audit log.

Secret values are read from standard input or a file, never from command-line
arguments, and are printed only by 'passman secret get'.

Environment:
  PASSMAN_STORE       store directory (--store); default $XDG_DATA_HOME/passman,
                      else ~/.local/share/passman
  PASSMAN_KEY_FILE    master key file (--key-file); default STORE/master.key
  PASSMAN_MASTER_KEY  master keys as base64, comma-separated, active first;
                      takes precedence over the key file
  PASSMAN_AUDIT_SYNC  when an audit entry counts as written (--audit-sync)
  PASSMAN_POLICIES    directory of Rego policies added to the bundled ones
  PASSMAN_ADDR        passman server URL (--addr): secret, audit and token
                      commands go to the server instead of the local store
  PASSMAN_TOKEN       bearer token for the server
  PASSMAN_CACERT      CA certificate the server's must chain to (--cacert)

` + exitCodeHelp(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          groupArgs,
		RunE:          groupRun,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.started = true
			f, err := parseFormat(a.flags.output, cmd.Annotations[annotationFormats])
			if err != nil {
				return err
			}
			a.out = printer{format: f, w: cmd.OutOrStdout()}
			return nil
		},
	}
	// --version answers as `passman version` does in text, the fastest
	// check that a passman is installed.
	root.Version = version
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetIn(a.env.Stdin)
	root.SetOut(a.env.Stdout)
	root.SetErr(a.env.Stderr)
	root.SetFlagErrorFunc(flagError)
	a.flags.register(root)
	root.AddCommand(
		newInitCmd(a),
		newSecretCmd(a),
		newKeysCmd(a),
		newAuditCmd(a),
		newStoreCmd(a),
		newFingerprintsCmd(a),
		newScanCmd(a),
		newRotateCmd(a),
		newStatusCmd(a),
		newPolicyCmd(a),
		newLintCmd(a),
		newPlanCmd(a),
		newApplyCmd(a),
		newVersionCmd(a),
		newServerCmd(a),
		newTokenCmd(a),
		newConnectionCmd(a),
		newActionCmd(a),
	)
	return root
}

// groupArgs lets a command group receive stray arguments so groupRun can
// report them as an unknown command; cobra would otherwise print help and
// exit 0 for "passman secret bogus".
func groupArgs(*cobra.Command, []string) error { return nil }

// groupRun shows a group's help, or rejects an unknown subcommand.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return cmd.Help()
}

// flagError turns pflag's errors into usage errors. A --value flag gets an
// explanation rather than just "unknown flag": its absence is deliberate.
func flagError(_ *cobra.Command, err error) error {
	if strings.Contains(err.Error(), "--value") {
		return usageErrorf("%w; values are never taken from arguments (they end up in shell history and process listings): pipe the value in or use --file or --generate", err)
	}
	return &usageError{err: err}
}

// exactArgs is cobra.ExactArgs as a usage error naming the arguments. It
// never echoes the arguments: a user who types a value where the path goes
// must not see it copied to stderr and terminal logs.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(names) == 0 && len(args) > 0 {
			return usageErrorf("takes no arguments, got %d", len(args))
		}
		if len(args) != len(names) {
			return usageErrorf("want %d argument(s) (%s), got %d", len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// rangeArgs accepts between min and max arguments, likewise without
// echoing them.
func rangeArgs(min, max int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return usageErrorf("want %d to %d argument(s) (%s), got %d", min, max, names, len(args))
		}
		return nil
	}
}
