package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/client"
	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/secret"
)

// Backend is what the provider's resources work on: the Service and the
// capabilities they use. client.Client (a server) and core.Local (a local
// store) both implement it; the provider never asserts which it holds.
type Backend interface {
	passman.Service
	passman.Connections
	passman.Tokens
	passman.PolicyEvaluator
	passman.ValueComparer
	passman.Policies
}

var (
	_ Backend = (*client.Client)(nil)
	_ Backend = (*core.Local)(nil)
)

// conn is the configured provider's way to a Backend: a server's client,
// or a local store opened around each operation.
type conn struct {
	remote *remote
	local  *localStore
}

// use runs fn with the backend. For a local store the store is open for
// fn's duration (and briefly after, for the next call); for a server, an
// OIDC token about to expire is renewed first.
func (c *conn) use(ctx context.Context, fn func(Backend) error) error {
	if c.local != nil {
		l, err := c.local.acquire(ctx)
		if err != nil {
			return err
		}
		defer c.local.release()
		return fn(l)
	}
	if err := c.remote.fresh(ctx); err != nil {
		return err
	}
	return fn(c.remote.c)
}

// remote is a server's client and, with OIDC, how to log in again.
type remote struct {
	c *client.Client
	// audience is the OIDC audience; "" when a token was configured.
	audience string
	getenv   func(string) string
	now      func() time.Time

	mu       sync.Mutex
	expires  time.Time // zero: never, or no OIDC login yet
	loggedIn bool
}

// oidcRenewBefore is how long before its expiry an OIDC token is replaced:
// longer than one request may take, so none is sent with a token that
// expires on the way.
const oidcRenewBefore = time.Minute

// fresh logs in through GitHub Actions OIDC when the provider uses it and
// the token is missing or about to expire: a long apply outlives the
// server's 15-minute OIDC tokens.
func (r *remote) fresh(ctx context.Context) error {
	if r.audience == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loggedIn && (r.expires.IsZero() || r.now().Add(oidcRenewBefore).Before(r.expires)) {
		return nil
	}
	info, err := r.c.LoginGitHubActions(ctx, r.audience, r.getenv)
	if err != nil {
		return err
	}
	r.loggedIn, r.expires = true, info.ExpiresAt
	return nil
}

// LocalStores holds the local stores a provider process opened, so that
// the process can close them when it ends (providerserver.Serve returns).
// A store is also closed once no operation has used it for a moment:
// Terraform runs its commands (plan, apply) one after another, each
// needing the store's file lock, and in tests several runs share one
// process.
type LocalStores struct {
	mu     sync.Mutex
	stores []*localStore
}

// NewLocalStores returns an empty set.
func NewLocalStores() *LocalStores { return &LocalStores{} }

func (s *LocalStores) add(ls *localStore) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stores = append(s.stores, ls)
}

// Close closes every store still open and reports the failures (a close
// records the audit log's head: losing one matters).
func (s *LocalStores) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, ls := range s.stores {
		errs = append(errs, ls.close())
	}
	s.stores = nil
	return errors.Join(errs...)
}

// localIdle is how long a local store stays open after its last use.
// Terraform's calls within one command come in quick succession; between
// commands another process (the passman CLI, the next terraform command)
// waits for the lock at most this long.
const localIdle = 200 * time.Millisecond

// localStore is a local store opened on demand: open while operations use
// it, closed localIdle after the last.
type localStore struct {
	opts core.Options

	mu       sync.Mutex
	l        *core.Local
	users    int
	timer    *time.Timer
	closeErr error
}

func newLocalStore(opts core.Options) *localStore { return &localStore{opts: opts} }

func (s *localStore) acquire(ctx context.Context) (*core.Local, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.l == nil {
		l, err := core.Open(ctx, s.opts)
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", s.opts.Dir, err)
		}
		s.l = l
	}
	s.users++
	return s.l, nil
}

func (s *localStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users--
	if s.users == 0 {
		s.timer = time.AfterFunc(localIdle, s.closeIdle)
	}
}

func (s *localStore) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == 0 && s.l != nil {
		s.closeErr = errors.Join(s.closeErr, s.l.Close())
		s.l = nil
	}
}

func (s *localStore) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.l != nil {
		s.closeErr = errors.Join(s.closeErr, s.l.Close())
		s.l = nil
	}
	err := s.closeErr
	s.closeErr = nil
	if err != nil {
		return fmt.Errorf("close store %s: %w", s.opts.Dir, err)
	}
	return nil
}

// localOptions opens a store as the passman CLI does on its host: the
// store's administrator runs exec connections' programs as themselves.
func localOptions(dir, keyFile string, getenv func(string) string) core.Options {
	return core.Options{Dir: dir, KeyFile: keyFile, Actor: core.OSActor(), Connectors: core.HostConnectors(), Getenv: getenv}
}

// notFound reports whether err says the object does not exist (or may not
// be seen, which a passman server answers the same way).
func notFound(err error) bool { return errors.Is(err, secret.ErrNotFound) }
