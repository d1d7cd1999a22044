package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/scheduler/etcdelect"
	"github.com/passman-dev/passman/secret"
)

// Default listen addresses: every interface for a real server; loopback
// only for a dev server, whose root token is printed on the terminal.
const (
	DefaultAddr    = ":8200"
	DefaultDevAddr = "127.0.0.1:8200"
)

// Default timeouts. Reads and writes are bounded so a slow client cannot
// hold a connection (and a goroutine) for ever; the write timeout leaves
// room for an audit verify of a large log.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 120 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 30 * time.Second
)

// DefaultTokenReapInterval is how often the server removes the records of
// tokens expired or revoked longer ago than Config.TokenRetention. Each OIDC
// login leaves one; at this interval a busy server removes them in small
// batches rather than letting them pile up.
const DefaultTokenReapInterval = 10 * time.Minute

// Config configures Run.
type Config struct {
	// Options configure the handler.
	Options
	// Addr is the listen address; "" means DefaultAddr, or DefaultDevAddr
	// in dev mode. Port 0 picks a free port (see Started).
	Addr string
	// TLSCertFile and TLSKeyFile are the server's certificate chain and
	// key (PEM). Required unless Dev: passman serves only HTTPS, since
	// every request carries a bearer token.
	TLSCertFile string
	TLSKeyFile  string
	// ClientCAFile, when set, is a PEM bundle of CAs for client
	// certificates: TLS then asks for one (verified if given) and a
	// request with a verified certificate and no Authorization header is
	// authenticated by it (subject kind "mtls").
	ClientCAFile string
	// GitHubOIDC, when set, enables POST /v1/auth/oidc (see OIDCConfig);
	// Run refuses to start if it is invalid (no audience, say).
	GitHubOIDC *OIDCConfig
	// Store opens the store to serve. In dev mode only Actor, AuditSync
	// and Now are used.
	Store core.Options
	// Dev runs a throwaway server: a new store in DevDir, a self-signed
	// certificate, a root token, all printed to Out as shell exports.
	Dev bool
	// DevDir holds a dev server's store and certificate; "" means a new
	// temporary directory, removed when Run returns.
	DevDir string
	// Out receives the dev server's export lines; nil means os.Stdout.
	Out io.Writer
	// Started, when set, is called once the server listens (tests use it
	// to learn a port-0 address and the dev credentials).
	Started func(Started)

	// UnauthenticatedMetricsAccess serves /metrics to anyone; by default
	// it needs a valid token or client certificate, as the API does.
	UnauthenticatedMetricsAccess bool

	// RateLimit limits each caller (off when RPS is 0); Run builds
	// Options.Limiter and Options.TrustedProxies from it.
	RateLimit RateLimit

	// ExecPrograms are the programs exec connections may run; empty
	// disables the exec connector (it runs programs as the server's user).
	ExecPrograms []string
	// Getenv resolves connections' env:NAME credential references; nil
	// means the process environment (os.Getenv), once Run has removed the
	// master key from it.
	Getenv func(string) string
	// TokenRetention is how long the records of expired and revoked
	// tokens are kept (listed, explaining their accessors) before the
	// server removes them; 0 means core.DefaultTokenRetention.
	TokenRetention time.Duration
	// TokenReapInterval is how often it removes them; 0 means
	// DefaultTokenReapInterval. With the scheduler enabled, the scheduler
	// reaps them instead, on its own interval, on the leading server only.
	TokenReapInterval time.Duration
	// Scheduler runs due rotations, revocations and token reaping.
	Scheduler SchedulerConfig

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds how long shutdown waits for in-flight
	// requests before it cuts them off.
	ShutdownTimeout time.Duration
}

// SchedulerConfig configures the server's scheduler (package scheduler).
type SchedulerConfig struct {
	Enabled bool
	// Interval separates runs (scheduler.DefaultInterval if 0); Jitter
	// adds a random delay of up to itself to each.
	Interval, Jitter time.Duration
	// Node names this server; "" means its host name and listen address.
	Node string
	// Due are the rules of each run's due rotations (rotate --due's).
	Due rotation.DueOptions
	// Leadership decides which server runs the schedule; nil means this
	// one always does on a store of its own (bbolt), and an etcd election
	// (package scheduler/etcdelect) on a store in etcd.
	Leadership scheduler.Leadership
	// ElectionTTL is the etcd election's session TTL, which bounds the
	// failover with Interval; 0 means etcdelect.DefaultTTL.
	ElectionTTL time.Duration
}

// ElectionPrefix is where the servers of the etcd deployment at prefix
// hold their scheduler election: beside the store's keys, not among them,
// so a backup or export of the store carries no election state.
func ElectionPrefix(prefix string) string { return "passman-election/" + prefix }

// etcdBackend is a store in etcd (store/etcd's DB): its client and prefix.
type etcdBackend interface {
	Client() *clientv3.Client
	Prefix() string
}

// Started describes a server that is listening.
type Started struct {
	// URL is the server's address for clients (PASSMAN_ADDR).
	URL string
	// CACertFile is the dev server's certificate (PASSMAN_CACERT); "" for a
	// server with its own certificate.
	CACertFile string
	// RootToken is the dev server's root token (PASSMAN_TOKEN); "" otherwise.
	RootToken string
}

// withMetrics puts the instrumentation around the API (so its 429s are
// counted too) and /metrics beside it, for authenticated callers unless
// unauthenticated is set.
func withMetrics(h *handler, m *metrics.Metrics, unauthenticated bool) http.Handler {
	// No http.ServeMux: it would answer a path with "..", "." or "//" with
	// a redirect to the cleaned path (another secret, even another route)
	// instead of letting the API refuse it with 400.
	metricsH := m.Handler()
	if !unauthenticated {
		metricsH = h.guardMetrics(metricsH)
	}
	apiH := Instrument(h, m, RoutePattern)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			metricsH.ServeHTTP(w, r)
			return
		}
		apiH.ServeHTTP(w, r)
	})
}

// limiter is the rate limiter the rate_limit settings ask for, nil for
// none, and the trusted proxies they name.
func (rl RateLimit) limiter() (*RateLimiter, []netip.Prefix, error) {
	trusted, err := ParseTrustedProxies(rl.TrustedProxies)
	if err != nil {
		return nil, nil, err
	}
	if rl.RPS <= 0 {
		return nil, trusted, nil
	}
	burst := rl.Burst
	if burst <= 0 {
		burst = max(1, int(rl.RPS))
	}
	return NewRateLimiter(rl.RPS, burst, 100_000), trusted, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Run serves the store over HTTPS until ctx is cancelled, then shuts down
// gracefully: it stops accepting connections, fails readiness, lets
// in-flight requests finish (up to ShutdownTimeout) and closes the store.
func Run(ctx context.Context, cfg Config) (err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.TokenRetention < 0 || cfg.TokenReapInterval < 0 {
		return fmt.Errorf("%w: token retention and reap interval must not be negative", secret.ErrInvalidArgument)
	}
	var dev *devSetup
	if cfg.Dev {
		if dev, err = setupDev(ctx, &cfg); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, dev.cleanup()) }()
	} else if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
		return fmt.Errorf("%w: a TLS certificate and key are required (--tls-cert, --tls-key); for a local throwaway server use --dev", secret.ErrInvalidArgument)
	}
	hardenProcess()
	// The server never lends its own privileges to what a caller
	// configured: connections are an operator's, exec runs only listed
	// programs, and env:NAME references resolve in an environment the
	// master key has left.
	cfg.Store.Connectors = rotation.Connectors(rotation.ConnectorOptions{ExecPrograms: cfg.ExecPrograms})
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	cfg.Store.Metrics = cfg.Metrics
	cfg.Store.Getenv = cfg.Getenv
	if cfg.Store.Getenv == nil {
		cfg.Store.Getenv = os.Getenv
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("%w: load TLS certificate: %v", secret.ErrInvalidArgument, err)
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCAFile != "" {
		pool, err := loadClientCAs(cfg.ClientCAFile)
		if err != nil {
			return err
		}
		withClientCAs(tlsConfig, pool)
		cfg.ClientCerts = true
	}
	if cfg.Limiter == nil {
		if cfg.Limiter, cfg.TrustedProxies, err = cfg.RateLimit.limiter(); err != nil {
			return err
		}
	}
	if cfg.GitHubOIDC != nil {
		if cfg.OIDC, err = NewOIDC(*cfg.GitHubOIDC); err != nil {
			return err
		}
	}

	local, err := core.Open(ctx, cfg.Store)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if cerr := local.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
		}
	}()
	started := Started{}
	if dev != nil {
		// The root token acts as "root" with claim role=root, which the
		// dev policy (RootPolicy) makes admin. It is created as the local
		// actor, the store's creator, before the server answers anyone.
		token, info, err := local.CreateToken(ctx, secret.TokenRequest{Identity: "root", Claims: map[string]string{"role": "root"}, TTL: DevRootTokenTTL})
		if err != nil {
			return fmt.Errorf("create root token: %w", err)
		}
		started.RootToken, started.CACertFile, dev.tokenExpires = token, cfg.TLSCertFile, info.ExpiresAt
	}
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
		if cfg.Dev {
			addr = DefaultDevAddr
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	started.URL = "https://" + clientAddr(ln.Addr())

	// Stopped before the store closes (deferred later, so run earlier).
	retention := orDefault(cfg.TokenRetention, core.DefaultTokenRetention)
	if cfg.Scheduler.Enabled {
		stop, lead, err := startScheduler(ctx, local, cfg, retention, ln.Addr())
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
		cfg.Leadership = lead
	} else {
		stopReaper := reapTokens(ctx, local, cfg.Logger, retention, orDefault(cfg.TokenReapInterval, DefaultTokenReapInterval))
		defer stopReaper()
	}

	h := newHandler(local, cfg.Options)
	srv := &http.Server{
		Handler:           withMetrics(h, cfg.Metrics, cfg.UnauthenticatedMetricsAccess),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: orDefault(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		// Request contexts do not derive from ctx: cancelling ctx starts a
		// graceful shutdown, which lets in-flight requests finish.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()

	cfg.Logger.Info("passman server listening", slog.String("url", started.URL), slog.Bool("dev", cfg.Dev))
	if dev != nil {
		dev.announce(cfg.Out, started)
	}
	if cfg.Started != nil {
		cfg.Started(started)
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	cfg.Logger.Info("passman server shutting down")
	h.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(cfg.ShutdownTimeout, DefaultShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// In-flight requests outlived the timeout: cut them off. Their
		// changes either committed with their audit entries or did not.
		return errors.Join(fmt.Errorf("shutdown: %w", err), srv.Close())
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// startScheduler runs the scheduler until ctx is done or stop is called,
// which waits for a run in progress to end.
func startScheduler(ctx context.Context, local *core.Local, cfg Config, retention time.Duration, addr net.Addr) (stop func(), lead scheduler.Leadership, err error) {
	sc := cfg.Scheduler
	node := cmp.Or(sc.Node, cfg.Store.ServerID)
	if node == "" {
		host, _ := os.Hostname()
		node = host + "/" + addr.String()
	}
	lead = sc.Leadership
	if eb, ok := cfg.Store.Backend.(etcdBackend); ok && lead == nil {
		if lead, err = etcdelect.New(eb.Client(), ElectionPrefix(eb.Prefix()), node, sc.ElectionTTL); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", secret.ErrInvalidArgument, err)
		}
	}
	if lead == nil {
		lead = scheduler.Single{Node: node}
	}
	s, err := scheduler.New(local.Scheduled(), lead, scheduler.Config{
		Node: node, Interval: sc.Interval, Jitter: sc.Jitter, Due: sc.Due, TokenRetention: retention,
		Now: cfg.Store.Now, Logger: cfg.Logger, Metrics: metrics.NewScheduler(cfg.Metrics),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", secret.ErrInvalidArgument, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx) // returns nil when ctx ends; failures are logged
	}()
	return func() {
		cancel()
		<-done
	}, lead, nil
}

// reapTokens removes old token records now and every interval until ctx
// is done or the returned function is called, which waits for a run in
// progress. It acts as the store's creator, as the OIDC login does.
func reapTokens(ctx context.Context, local *core.Local, log *slog.Logger, keep, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			n, err := local.ReapTokens(ctx, keep)
			switch {
			case err != nil && ctx.Err() == nil:
				log.LogAttrs(ctx, slog.LevelWarn, "token reaping failed", slog.String("error", err.Error()))
			case n > 0:
				log.LogAttrs(ctx, slog.LevelInfo, "token records reaped", slog.Int("count", n), slog.Duration("retention", keep))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// clientAddr is the host:port a client on this machine dials: a wildcard
// listen address becomes loopback.
func clientAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if tcp.IP != nil && tcp.IP.To4() == nil {
			ip = net.IPv6loopback
		}
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// devSetup is a dev server's scratch directory.
type devSetup struct {
	dir     string
	removed bool     // whether cleanup removes dir
	lock    *os.File // held while the server runs (lockDevDir); nil if none
	// tokenExpires is when the root token expires.
	tokenExpires time.Time
}

// RootPolicy is the authorization rule a dev server installs: a token
// with claim role=root may do everything. A production store that wants a
// root token adds the same rule to its policy directory; only an admin can
// create a token, so the rule grants nothing an admin could not.
const RootPolicy = `# A token with claim role=root may do everything.
package passman.authz

allow if root_token

reasons contains "a token with claim role=root may do everything" if root_token

root_token if {
	input.subject.kind == "token"
	input.subject.claims.role == "root"
}
`

// setupDev creates the dev server's store, policy and certificate, and
// points cfg at them.
func setupDev(ctx context.Context, cfg *Config) (*devSetup, error) {
	if cfg.Store.PolicyDir != "" || cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		return nil, fmt.Errorf("%w: --dev makes its own store, policies and certificate; drop --policies and the TLS flags", secret.ErrInvalidArgument)
	}
	d := &devSetup{dir: cfg.DevDir}
	fail := func(err error) (*devSetup, error) {
		return nil, errors.Join(fmt.Errorf("dev server: %w", err), d.cleanup())
	}
	if d.dir == "" {
		// A dev server killed before it could clean up (SIGKILL, a crash,
		// a power cut) left its store, key and root token here: the next
		// one removes them.
		sweepDevDirs(ctx, os.TempDir(), cfg.Logger)
		dir, err := os.MkdirTemp("", devDirPrefix)
		if err != nil {
			return nil, fmt.Errorf("dev server: %w", err)
		}
		d.dir, d.removed = dir, true
		if d.lock, err = lockDevDir(dir); err != nil {
			return fail(err)
		}
	}
	polDir := filepath.Join(d.dir, "policies")
	if err := os.MkdirAll(polDir, 0o700); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "root.rego"), []byte(RootPolicy), 0o600); err != nil {
		return fail(err)
	}
	opts := core.Options{
		Dir:       filepath.Join(d.dir, "store"),
		Actor:     cfg.Store.Actor,
		AuditSync: cfg.Store.AuditSync,
		Now:       cfg.Store.Now,
		PolicyDir: polDir,
	}
	if opts.Actor == "" {
		opts.Actor = "passman-dev"
	}
	if _, err := core.Init(ctx, opts); err != nil {
		return fail(err)
	}
	cfg.Store = opts
	cfg.TLSCertFile = filepath.Join(d.dir, "tls", "cert.pem")
	cfg.TLSKeyFile = filepath.Join(d.dir, "tls", "key.pem")
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if host, _, err := net.SplitHostPort(cfg.Addr); err == nil && host != "" {
		hosts = append(hosts, host)
	}
	if err := WriteSelfSigned(cfg.TLSCertFile, cfg.TLSKeyFile, hosts, 30*24*time.Hour); err != nil {
		return fail(err)
	}
	return d, nil
}

func (d *devSetup) announce(w io.Writer, s Started) {
	fmt.Fprintf(w, `passman dev server: a throwaway store in %s, NOT for real secrets.
Export these to use it:

export PASSMAN_ADDR=%s
export PASSMAN_TOKEN=%s
export PASSMAN_CACERT=%s

The root token expires at %s (in %s).

`, d.dir, s.URL, s.RootToken, s.CACertFile, d.tokenExpires.Local().Format(time.RFC3339), DevRootTokenTTL)
}

func (d *devSetup) cleanup() error {
	if !d.removed {
		return nil
	}
	// Removed under the lock, which goes with the last file descriptor.
	err := os.RemoveAll(d.dir)
	if d.lock != nil {
		err = errors.Join(err, d.lock.Close())
	}
	if err != nil {
		return fmt.Errorf("remove dev directory: %w", err)
	}
	return nil
}
