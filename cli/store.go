package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/keyring"
)

// Environment variables read by passman (besides keyring.EnvVar).
const (
	envStore     = "PASSMAN_STORE"
	envKeyFile   = "PASSMAN_KEY_FILE"
	envAuditSync = "PASSMAN_AUDIT_SYNC"
	envPolicies  = "PASSMAN_POLICIES"
	// A server address sends secret commands to a passman server (see
	// remote.go) instead of a local store.
	envAddr   = "PASSMAN_ADDR"
	envToken  = "PASSMAN_TOKEN"
	envCACert = "PASSMAN_CACERT"
)

// globalFlags are the flags every command accepts.
type globalFlags struct {
	store     string
	keyFile   string
	auditSync string
	policies  string
	addr      string
	caCert    string
}

func (g *globalFlags) register(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&g.store, "store", "", "store directory (env "+envStore+"; default $XDG_DATA_HOME/passman or ~/.local/share/passman)")
	pf.StringVar(&g.keyFile, "key-file", "", "master key file (env "+envKeyFile+"; default STORE/master.key; "+keyring.EnvVar+" takes precedence)")
	pf.StringVar(&g.auditSync, "audit-sync", "", "when an audit entry counts as written: fsync or write (env "+envAuditSync+"; default fsync)")
	pf.StringVar(&g.policies, "policies", "", "directory of Rego policies added to the bundled ones (env "+envPolicies+")")
	pf.StringVar(&g.addr, "addr", "", "passman server URL (env "+envAddr+"): secret commands go to the server, authenticated by "+envToken)
	pf.StringVar(&g.caCert, "cacert", "", "CA certificate file the server's certificate must chain to (env "+envCACert+")")
}

// config is where the store is and how to open it, resolved from flags,
// then the environment, then defaults.
type config struct {
	dir     string
	keyFile string // "" means core's default, dir/master.key
	// keyring holds keys from PASSMAN_MASTER_KEY; nil means use the key file.
	keyring   *keyring.Keyring
	auditSync audit.SyncMode
	policyDir string
	// authz, when set, is the policy engine a command already built (the
	// manifest commands), so lint and authorization use one policy set.
	authz core.Authorizer
	actor string
	// getenv resolves connections' env:NAME references.
	getenv func(string) string
}

// config resolves the store configuration. Errors are configuration
// errors: they wrap ErrInvalidArgument or ErrKey, or are usage errors.
func (a *app) config() (config, error) {
	if err := a.requireLocal(); err != nil {
		return config{}, err
	}
	return a.localConfig()
}

// localConfig is config for a command that always works on a local store
// (the server), whatever --addr says.
func (a *app) localConfig() (config, error) {
	var c config
	dir, err := a.localStoreDir()
	if err != nil {
		return c, err
	}
	c.dir = dir
	c.keyFile = firstSet(a.flags.keyFile, a.Env.Var(envKeyFile))
	if c.keyFile != "" {
		if abs, err := filepath.Abs(c.keyFile); err == nil {
			c.keyFile = abs
		}
	}
	if v := a.Env.Var(keyring.EnvVar); v != "" {
		if c.keyring, err = keyring.FromEnv(v); err != nil {
			return c, err
		}
	}
	if c.auditSync, err = audit.ParseSyncMode(firstSet(a.flags.auditSync, a.Env.Var(envAuditSync))); err != nil {
		return c, err
	}
	c.policyDir = a.policyDir()
	c.authz = a.authz
	c.actor = a.actor()
	c.getenv = a.Env.Var
	return c, nil
}

func (a *app) storeDir() (string, error) {
	if err := a.requireLocal(); err != nil {
		return "", err
	}
	return a.localStoreDir()
}

func (a *app) localStoreDir() (string, error) {
	dir := firstSet(a.flags.store, a.Env.Var(envStore))
	if dir == "" {
		if xdg := a.Env.Var("XDG_DATA_HOME"); xdg != "" {
			dir = filepath.Join(xdg, "passman")
		} else if home := a.Env.Var("HOME"); home != "" {
			dir = filepath.Join(home, ".local", "share", "passman")
		} else {
			return "", clibase.UsageErrorf("cannot find a store directory: set --store or %s (neither XDG_DATA_HOME nor HOME is set)", envStore)
		}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return dir, nil
}

// policyDir is the user policy directory from --policies or the
// environment; "" means the bundled policies alone.
func (a *app) policyDir() string {
	return firstSet(a.flags.policies, a.Env.Var(envPolicies))
}

// keyFilePath is the key file in use, for messages.
func (c config) keyFilePath() string {
	if c.keyFile != "" {
		return c.keyFile
	}
	return filepath.Join(c.dir, core.KeyFile)
}

func (c config) coreOptions() core.Options {
	// env:NAME references read this process's environment; a server
	// narrows that and the connectors (server.Run).
	return core.Options{Dir: c.dir, KeyFile: c.keyFile, Keyring: c.keyring, Actor: c.actor, AuditSync: c.auditSync, PolicyDir: c.policyDir, Authorizer: c.authz,
		Connectors: core.HostConnectors(), Getenv: c.getenv}
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// actor names who runs the command, for version authorship and the audit
// log (core.OSActor).
func (a *app) actor() string { return core.OSActor() }

// openLocal opens the store for a command that needs more than the Service
// (key administration). The caller closes it.
func (a *app) openLocal(ctx context.Context) (*core.Local, config, error) {
	c, err := a.config()
	if err != nil {
		return nil, c, err
	}
	l, err := core.Open(ctx, c.coreOptions())
	if err != nil {
		return nil, c, fmt.Errorf("open store: %w", err)
	}
	return l, c, nil
}

// withLocal runs fn on an open store and closes it, reporting a failed
// close too: Close records the audit head, and losing that matters.
func (a *app) withLocal(ctx context.Context, fn func(*core.Local, config) error) error {
	l, c, err := a.openLocal(ctx)
	if err != nil {
		return err
	}
	err = fn(l, c)
	if cerr := l.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
	}
	return err
}

// withService runs fn with the Service for secret operations. It is the
// only way secret commands reach the store, so they stay thin.
func (a *app) withService(ctx context.Context, fn func(passman.Service) error) error {
	return withBackend(ctx, a, func(c *client.Client) passman.Service { return c },
		func(l *core.Local) passman.Service { return l }, fn)
}

// withBackend runs fn with what a command works on: the server's client
// when an address is set, else the local store (opened for fn's duration).
// Commands that work either way call it with their own interface.
func withBackend[T any](ctx context.Context, a *app, remote func(*client.Client) T, local func(*core.Local) T, fn func(T) error) error {
	if a.remoteAddr() != "" {
		c, err := a.remoteClient()
		if err != nil {
			return err
		}
		return fn(remote(c))
	}
	return a.withLocal(ctx, func(l *core.Local, _ config) error { return fn(local(l)) })
}
