package clibase

import (
	"github.com/spf13/cobra"
)

// NewFront is the front's root command: --version, version and the scan
// commands without the store's part (Managed is nil). It is the full
// program's tree cut down to what needs no store, server, policy or
// rotation code; Serves says which invocations it answers.
func NewFront(s *State) *cobra.Command {
	root := NewRoot(s)
	root.AddCommand(NewScanCmd(s, nil), NewVersionCmd(s))
	return root
}

// frontLeaves are the commands the front runs itself, by command path.
var frontLeaves = map[string]bool{
	"passman version":     true,
	"passman scan file":   true,
	"passman scan dir":    true,
	"passman scan git":    true,
	"passman scan staged": true,
}

// storeFlags are the scan flags that reach the store (recognising and
// responding to managed secrets): only the full program has it.
var storeFlags = []string{"index", "managed", "respond"}

// Serves reports whether the front answers args itself, exactly as the
// full program would: --version, version, and scans that need no store,
// whose flags and arguments parse. Anything else (help, completion, other
// commands, flags the front does not know, usage errors) is the full
// program's to answer, so its messages come from one place.
func Serves(args []string) bool {
	if len(args) == 1 && args[0] == "--version" {
		return true
	}
	root := NewFront(&State{})
	cmd, rest, err := root.Find(args)
	if err != nil || !frontLeaves[cmd.CommandPath()] {
		return false
	}
	// Parsing without cobra's help flag, which is added only when a
	// command runs: -h and --help are unknown here and go to the full
	// program, which prints the whole help.
	if err := cmd.ParseFlags(rest); err != nil {
		return false
	}
	for _, name := range storeFlags {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return false
		}
	}
	return cmd.ValidateArgs(cmd.Flags().Args()) == nil
}
