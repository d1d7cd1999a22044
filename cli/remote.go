package cli

import (
	"runtime"

	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/internal/clibase"
)

// remoteAddr is the passman server secret commands go to, "" for the
// local store.
func (a *app) remoteAddr() string {
	return firstSet(a.flags.addr, a.Env.Var(envAddr))
}

// requireLocal refuses a command that needs the store's files (init, key
// administration, compaction) when a server address is set: silently
// working on a local store instead would be a surprise, and the server
// cannot do these for a client.
func (a *app) requireLocal() error {
	if addr := a.remoteAddr(); addr != "" {
		return clibase.UsageErrorf("this command works on a local store only, but a server address is set (--addr or %s=%s); unset it, or run the command on the server's host", envAddr, addr)
	}
	return nil
}

// remoteClient connects to the server at remoteAddr. The token comes only
// from the environment: on a command line it would show in process
// listings and shell history.
func (a *app) remoteClient() (*client.Client, error) {
	return client.New(client.Options{
		Addr:       a.remoteAddr(),
		Token:      a.Env.Var(envToken),
		CACertFile: firstSet(a.flags.caCert, a.Env.Var(envCACert)),
		UserAgent:  "passman/" + clibase.Version() + " (" + runtime.GOOS + "/" + runtime.GOARCH + ")",
	})
}
