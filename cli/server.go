package cli

import (
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/passman-dev/passman/internal/clibase"
	"github.com/passman-dev/passman/server"
	"github.com/passman-dev/passman/store/etcd"
)

// serverFlags are passman server's own flags; a config file fills what
// they leave unset.
type serverFlags struct {
	config    string
	listen    string
	addr      string // --addr, the deprecated spelling of --listen
	tlsCert   string
	tlsKey    string
	dev       bool
	logFormat string
	logLevel  string
}

func newServerCmd(a *app) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve the store over HTTPS",
		Long: `Serve the local store to passman clients over HTTPS (the API under /v1).
Every request needs a bearer token ('passman token create'), acts as the
token's identity and is authorized by the store's policies and audited like
a local command.

The store is the one --store names, opened with the same key and policy
settings as any command. The server holds it open, so stop the server before
running local commands on it (token create included).

--dev starts a throwaway server instead: a new store in a temporary
directory (deleted on exit), a self-signed certificate and a root token (a
token with claim role=root, which the dev policy makes admin), printed as
lines to export in another shell. It listens on 127.0.0.1 only and is not
for real secrets.

Settings come from flags, then environment variables, then the --config
file (YAML), then defaults. The server's own variables are
PASSMAN_SERVER_CONFIG, PASSMAN_SERVER_LISTEN, PASSMAN_SERVER_TLS_CERT,
PASSMAN_SERVER_TLS_KEY, PASSMAN_SERVER_LOG_FORMAT and
PASSMAN_SERVER_LOG_LEVEL (not PASSMAN_ADDR: that is where clients find a
server); the store's are the usual PASSMAN_STORE, PASSMAN_KEY_FILE,
PASSMAN_MASTER_KEY, PASSMAN_POLICIES and PASSMAN_AUDIT_SYNC.
The server stops gracefully on Ctrl-C or SIGTERM: in-flight requests
finish, then the store is closed.`,
		Example: `  passman server --dev
  passman server --addr :8200 --tls-cert cert.pem --tls-key key.pem
  passman server --config /etc/passman/server.yaml`,
		Args: clibase.ExactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runServer(cmd, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.config, "config", "", "server configuration `FILE` (YAML)")
	fs.StringVar(&f.listen, "listen", "", "listen `ADDRESS` (default "+server.DefaultAddr+"; "+server.DefaultDevAddr+" with --dev)")
	// --addr everywhere else is a server's URL; here it was once where to
	// listen. It still works, shadowing the global --addr, which a server
	// has no use for.
	fs.StringVar(&f.addr, "addr", "", "deprecated spelling of --listen")
	_ = fs.MarkDeprecated("addr", "use --listen (--addr is a server's URL in every other command)")
	fs.SetOutput(a.Env.Stderr) // where the deprecation is said
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate chain `FILE` (PEM)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key `FILE` (PEM)")
	fs.BoolVar(&f.dev, "dev", false, "run a throwaway dev server with a temporary store and a root token")
	fs.StringVar(&f.logFormat, "log-format", "", "request log format: text or json (default text)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn or error (default info)")
	return cmd
}

// The server's environment variables; see passman server --help.
const (
	envServerConfig    = "PASSMAN_SERVER_CONFIG"
	envServerListen    = "PASSMAN_SERVER_LISTEN"
	envServerTLSCert   = "PASSMAN_SERVER_TLS_CERT"
	envServerTLSKey    = "PASSMAN_SERVER_TLS_KEY"
	envServerLogFormat = "PASSMAN_SERVER_LOG_FORMAT"
	envServerLogLevel  = "PASSMAN_SERVER_LOG_LEVEL"
)

func (a *app) runServer(cmd *cobra.Command, f serverFlags) error {
	env := a.Env.Var
	var fc server.FileConfig
	if config := firstSet(f.config, env(envServerConfig)); config != "" {
		var err error
		if fc, err = server.LoadFile(config); err != nil {
			return err
		}
	}
	logger, err := newLogger(a.Env.Stderr, firstSet(f.logFormat, env(envServerLogFormat), fc.Log.Format), firstSet(f.logLevel, env(envServerLogLevel), fc.Log.Level))
	if err != nil {
		return err
	}
	cfg := server.Config{
		Options:           server.Options{Logger: logger, MaxBodyBytes: fc.MaxBodyBytes},
		Addr:              firstSet(f.listen, f.addr, env(envServerListen), fc.Listen, fc.Addr),
		TLSCertFile:       firstSet(f.tlsCert, env(envServerTLSCert), fc.TLSCert),
		TLSKeyFile:        firstSet(f.tlsKey, env(envServerTLSKey), fc.TLSKey),
		Dev:               f.dev,
		Out:               a.Env.Stdout,
		ReadHeaderTimeout: time.Duration(fc.Timeouts.ReadHeader),
		ReadTimeout:       time.Duration(fc.Timeouts.Read),
		WriteTimeout:      time.Duration(fc.Timeouts.Write),
		IdleTimeout:       time.Duration(fc.Timeouts.Idle),
		ShutdownTimeout:   time.Duration(fc.Timeouts.Shutdown),
		ClientCAFile:      fc.ClientCA,
		GitHubOIDC:        fc.OIDC.Config(),
		RateLimit:         fc.RateLimit,
		ExecPrograms:      fc.Rotation.ExecPrograms,
		Getenv:            a.Env.Var,

		UnauthenticatedMetricsAccess: fc.Telemetry.UnauthenticatedMetricsAccess,
		TokenRetention:               time.Duration(fc.TokenRetention),
		Scheduler:                    fc.Scheduler.Config(),
	}
	if f.dev {
		// The dev server makes its own store and policies; only the
		// actor (the store's creator) carries over.
		cfg.Store.Actor = a.actor()
	} else {
		// The file's store settings apply unless a flag or the
		// environment says otherwise.
		if a.flags.store == "" && a.Env.Var(envStore) == "" {
			a.flags.store = fc.Store
		}
		if a.flags.keyFile == "" && a.Env.Var(envKeyFile) == "" {
			a.flags.keyFile = fc.KeyFile
		}
		if a.flags.policies == "" && a.Env.Var(envPolicies) == "" {
			a.flags.policies = fc.Policies
		}
		if a.flags.auditSync == "" && a.Env.Var(envAuditSync) == "" {
			a.flags.auditSync = fc.AuditSync
		}
		c, err := a.localConfig()
		if err != nil {
			return err
		}
		cfg.Store = c.coreOptions()
		ecfg, err := fc.EtcdConfig()
		if err != nil {
			return err
		}
		if ecfg != nil {
			// A server of a cluster: the store is in etcd, --store is
			// this server's own directory (its audit log).
			b, err := etcd.Open(cmd.Context(), *ecfg)
			if err != nil {
				return err
			}
			cfg.Store.Backend, cfg.Store.ServerID = b, fc.ServerID
		}
	}
	if a.Env.Var("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
	return server.Run(cmd.Context(), cfg)
}

// serverGCPercent is the server's garbage collection target unless GOGC
// sets one. A server's live heap is small (~10 MB) while every request
// allocates ~12 KB, so at Go's default of 100 the collector runs several
// times a second under load; at 400 a read costs ~15 % less server CPU
// (docs/benchmarks.md) for a few tens of MB more heap. GOMEMLIMIT still
// caps the heap where memory is tight.
const serverGCPercent = 400

// newLogger builds the server's log/slog logger on w.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, clibase.UsageErrorf("log level %q: want debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, clibase.UsageErrorf("log format %q: want text or json", format)
}
