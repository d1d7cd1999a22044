package cli

import (
	"runtime"

	"github.com/passman-dev/passman/client"
)

// remoteAddr is the passman server secret commands go to, "" for the
// local store.
func (a *app) remoteAddr() string {
	return firstSet(a.flags.addr, a.env.getenv(envAddr))
}

// requireLocal refuses a command that needs the store's files (init, key
// administration, compaction) when a server address is set: silently
// working on a local store instead would be a surprise, and the server
// cannot do these for a client.
func (a *app) requireLocal() error {
	if addr := a.remoteAddr(); addr != "" {
		return usageErrorf("this command works on a local store only, but a server address is set (--addr or %s=%s); unset it, or run the command on the server's host", envAddr, addr)
	}
	return nil
}

// remoteClient connects to the server at remoteAddr. The token comes only
// from the environment: on a command line it would show in process
// listings and shell history.
func (a *app) remoteClient() (*client.Client, error) {
	return client.New(client.Options{
		Addr:       a.remoteAddr(),
		Token:      a.env.getenv(envToken),
		CACertFile: firstSet(a.flags.caCert, a.env.getenv(envCACert)),
		UserAgent:  "passman/" + version + " (" + runtime.GOOS + "/" + runtime.GOARCH + ")",
	})
}
