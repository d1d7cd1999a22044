// Package cli is passman's command-line front end. It translates flags and
// arguments into calls on passman.Service (or, for store and key
// administration, on package core) and results into text or JSON; it holds
// no business logic. Main is the whole entry point, so tests run the real
// command tree in-process with their own streams and environment.
package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
)

// Env is the process environment a command runs in. Tests build their own;
// OSEnv returns the real one.
type Env = clibase.Env

// OSEnv returns the environment of the running process.
func OSEnv() Env { return clibase.OSEnv() }

// app is the state one invocation shares between its commands: the
// environment and the global flags. It lives for one call of Main.
type app struct {
	*clibase.State
	flags globalFlags
	// authz is a policy engine a command built for itself and hands to the
	// store it opens (see config.authz).
	authz core.Authorizer
}

// Main runs passman with args (without the program name) and returns the
// process exit code; see exitCodeHelp for their meanings. Errors are
// printed to env.Stderr as one "passman: <message>" line.
func Main(ctx context.Context, args []string, env Env) int {
	a := &app{State: &clibase.State{Env: env}}
	return clibase.Run(ctx, a.State, newRootCmd(a), args)
}

const annotationUsageExit = clibase.AnnotationUsageExit

func newRootCmd(a *app) *cobra.Command {
	root := clibase.NewRoot(a.State)
	root.Long = `passman stores secrets encrypted in a local store, keeps their version
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

` + clibase.ExitCodeHelp()
	a.flags.register(root)
	root.AddCommand(
		newInitCmd(a),
		newSecretCmd(a),
		newKeysCmd(a),
		newAuditCmd(a),
		newStoreCmd(a),
		newFingerprintsCmd(a),
		clibase.NewScanCmd(a.State, a),
		newRotateCmd(a),
		newStatusCmd(a),
		newPolicyCmd(a),
		newLintCmd(a),
		newPlanCmd(a),
		newApplyCmd(a),
		clibase.NewVersionCmd(a.State),
		newServerCmd(a),
		newTokenCmd(a),
		newConnectionCmd(a),
		newActionCmd(a),
	)
	return root
}
