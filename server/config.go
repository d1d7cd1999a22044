package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/etcd"
)

// FileConfig is the server's configuration file (YAML or JSON), for
// settings an operator keeps in version control. Command-line flags
// override it. Paths are used as written (relative to the working
// directory).
//
//	listen: ":8200"                            # addr: is the deprecated spelling
//	tls_cert: /etc/passman/tls/cert.pem
//	tls_key: /etc/passman/tls/key.pem
//	client_ca: /etc/passman/tls/client-ca.pem   # optional: mTLS clients
//	oidc:                                      # optional: GitHub Actions login
//	  audience: https://passman.example.com    # required with oidc
//	  issuer: https://token.actions.githubusercontent.com
//	  token_ttl: 15m
//	  allowed_owners: [acme]
//	store: /var/lib/passman
//	key_file: /etc/passman/master.key
//	policies: /etc/passman/policies
//	audit_sync: fsync
//	max_body_bytes: 2000000   # optional; caps every route, policy eval's 4 MiB included
//	token_retention: 24h   # keep expired/revoked token records this long
//	timeouts: {read_header: 10s, read: 60s, write: 120s, idle: 120s, shutdown: 30s}
//	log: {format: json, level: info}
//	rate_limit: {rps: 20, burst: 40, trusted_proxies: [10.0.0.0/8]}
//	telemetry: {unauthenticated_metrics_access: false}
//	rotation:
//	  exec_programs: [/usr/local/libexec/rotate-ldap]   # exec connections may run these; none by default
//	scheduler:                 # off by default
//	  enabled: true            # due rotations, revocations, token reaping; one server of a cluster leads
//	  interval: 1m             # between runs (at least 1s)
//	  jitter: 10s              # a random extra delay of up to this before each run
//	  node: passman-a          # this server's name in status and the election; default host/listen address
//	  canary: 1                # rotate --due's rules: canary batch size, failures that stop a run
//	  max_failures: 3
//	  election_ttl: 10s        # with storage: etcd: the election's session TTL (failover within TTL + interval)
//	storage: etcd        # bbolt (the default: the file in store) or etcd
//	server_id: pm-1      # with etcd: this server's name (its audit chain)
//	etcd:                # with etcd; store is then this server's own directory (its audit log)
//	  endpoints: [https://10.0.0.1:2379, https://10.0.0.2:2379, https://10.0.0.3:2379]
//	  prefix: passman/prod/
//	  ca_file: /etc/passman/etcd-ca.pem
//	  cert_file: /etc/passman/etcd-client.pem   # with key_file, for --client-cert-auth
//	  key_file: /etc/passman/etcd-client-key.pem
//	  stale_reads: false   # true: reads served by the nearest member, possibly stale
type FileConfig struct {
	Listen string `yaml:"listen"`
	// Addr is Listen's deprecated spelling; Listen wins when both are set.
	Addr         string    `yaml:"addr"`
	TLSCert      string    `yaml:"tls_cert"`
	TLSKey       string    `yaml:"tls_key"`
	ClientCA     string    `yaml:"client_ca"`
	OIDC         *OIDCFile `yaml:"oidc"`
	Store        string    `yaml:"store"`
	KeyFile      string    `yaml:"key_file"`
	Policies     string    `yaml:"policies"`
	AuditSync    string    `yaml:"audit_sync"`
	MaxBodyBytes int64     `yaml:"max_body_bytes"`
	Timeouts     Timeouts  `yaml:"timeouts"`
	Log          LogConfig `yaml:"log"`
	RateLimit    RateLimit `yaml:"rate_limit"`
	Telemetry    Telemetry `yaml:"telemetry"`
	Rotation     Rotation  `yaml:"rotation"`
	// TokenRetention: see Config.TokenRetention.
	TokenRetention Duration      `yaml:"token_retention"`
	Scheduler      SchedulerFile `yaml:"scheduler"`
	// Storage, ServerID and Etcd: a store shared by several servers.
	Storage  string    `yaml:"storage"`
	ServerID string    `yaml:"server_id"`
	Etcd     *EtcdFile `yaml:"etcd"`
}

// SchedulerFile is the scheduler section; see SchedulerConfig.
type SchedulerFile struct {
	Enabled     bool     `yaml:"enabled"`
	Interval    Duration `yaml:"interval"`
	Jitter      Duration `yaml:"jitter"`
	Node        string   `yaml:"node"`
	Canary      int      `yaml:"canary"`
	MaxFailures int      `yaml:"max_failures"`
	ElectionTTL Duration `yaml:"election_ttl"`
}

// Config is the SchedulerConfig the section describes.
func (f SchedulerFile) Config() SchedulerConfig {
	return SchedulerConfig{Enabled: f.Enabled, Interval: time.Duration(f.Interval), Jitter: time.Duration(f.Jitter), Node: f.Node,
		Due: rotation.DueOptions{Canary: f.Canary, MaxFailures: f.MaxFailures}, ElectionTTL: time.Duration(f.ElectionTTL)}
}

// minSchedulerInterval keeps a configuration from turning the scheduler
// into a busy loop over the store.
const minSchedulerInterval = time.Second

func (f SchedulerFile) check() error {
	switch {
	case f.Interval != 0 && time.Duration(f.Interval) < minSchedulerInterval:
		return fmt.Errorf("scheduler.interval %s is under %s", time.Duration(f.Interval), minSchedulerInterval)
	case f.Jitter < 0 || f.Canary < 0 || f.MaxFailures < 0 || f.ElectionTTL < 0:
		return errors.New("scheduler: jitter, canary, max_failures and election_ttl must not be negative")
	case len(f.Node) > 256:
		return errors.New("scheduler.node is longer than 256 bytes")
	}
	return nil
}

// EtcdFile is the etcd section.
type EtcdFile struct {
	Endpoints  []string `yaml:"endpoints"`
	Prefix     string   `yaml:"prefix"`
	CAFile     string   `yaml:"ca_file"`
	CertFile   string   `yaml:"cert_file"`
	KeyFile    string   `yaml:"key_file"`
	StaleReads bool     `yaml:"stale_reads"`
	// ReadCache (default true) answers secret reads from a copy of the
	// secrets' keys kept current by an etcd watch; reads stay
	// linearizable (store/etcd's Config.ReadCache).
	ReadCache *bool `yaml:"read_cache"`
}

// EtcdConfig is the etcd store configuration the file describes, nil for
// the default bbolt storage. The etcd section without storage: etcd (or
// the reverse) is an error: a server that silently served its local file
// instead of the cluster would split the truth in two.
func (f FileConfig) EtcdConfig() (*etcd.Config, error) {
	switch f.Storage {
	case "", "bbolt":
		if f.Etcd != nil {
			return nil, fmt.Errorf("%w: server config: an etcd section needs storage: etcd", secret.ErrInvalidArgument)
		}
		return nil, nil
	case "etcd":
	default:
		return nil, fmt.Errorf("%w: server config: storage %q: want bbolt or etcd", secret.ErrInvalidArgument, f.Storage)
	}
	if f.Etcd == nil || len(f.Etcd.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: server config: storage etcd needs etcd.endpoints", secret.ErrInvalidArgument)
	}
	cfg := &etcd.Config{Endpoints: f.Etcd.Endpoints, Prefix: f.Etcd.Prefix, StaleReads: f.Etcd.StaleReads}
	if f.Etcd.ReadCache == nil || *f.Etcd.ReadCache {
		cfg.ReadCache = store.ReadPrefixes()
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	tlsNeeded := f.Etcd.CAFile != "" || f.Etcd.CertFile != ""
	for _, ep := range f.Etcd.Endpoints {
		tlsNeeded = tlsNeeded || strings.HasPrefix(ep, "https://")
	}
	if tlsNeeded {
		var err error
		if cfg.TLS, err = etcd.TLSFiles(f.Etcd.CAFile, f.Etcd.CertFile, f.Etcd.KeyFile); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Rotation is the rotation section.
type Rotation struct {
	// ExecPrograms are the programs exec connections may run, as absolute
	// paths. Without it the exec connector is off: it runs a program as
	// the server's user, so only the operator chooses which.
	ExecPrograms []string `yaml:"exec_programs"`
}

// Telemetry is the telemetry section. /metrics needs a valid token or
// client certificate unless UnauthenticatedMetricsAccess opens it to
// anyone who can reach the port (a scraper on a private network without
// a token, say): its counters describe every tenant's traffic.
type Telemetry struct {
	UnauthenticatedMetricsAccess bool `yaml:"unauthenticated_metrics_access"`
}

// RateLimit is the rate_limit section: a token bucket per caller (its
// validated identity; its client address when it did not authenticate).
// Off when RPS is 0. TrustedProxies lists the load balancers (addresses
// or CIDR blocks) whose X-Forwarded-For names the client address; from
// any other peer the header is ignored.
type RateLimit struct {
	RPS            float64  `yaml:"rps"`
	Burst          int      `yaml:"burst"`
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// OIDCFile is the oidc section: GitHub Actions OIDC login.
type OIDCFile struct {
	Issuer        string   `yaml:"issuer"`
	Audience      string   `yaml:"audience"`
	TokenTTL      Duration `yaml:"token_ttl"`
	AllowedOwners []string `yaml:"allowed_owners"`
}

// Config is the OIDCConfig the section describes; nil for no section.
func (f *OIDCFile) Config() *OIDCConfig {
	if f == nil {
		return nil
	}
	return &OIDCConfig{Issuer: f.Issuer, Audience: f.Audience, TokenTTL: time.Duration(f.TokenTTL), AllowedOwners: f.AllowedOwners}
}

// Timeouts are the server's time limits, as durations ("30s").
type Timeouts struct {
	ReadHeader Duration `yaml:"read_header"`
	Read       Duration `yaml:"read"`
	Write      Duration `yaml:"write"`
	Idle       Duration `yaml:"idle"`
	Shutdown   Duration `yaml:"shutdown"`
}

// Duration is a duration written as Go duration text ("30s") in YAML.
type Duration time.Duration

// UnmarshalYAML parses duration text.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as \"30s\"", n.Line)
	}
	v, err := secret.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// LogConfig selects the request log's format (text or json) and level
// (debug, info, warn, error).
type LogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// LoadFile reads a configuration file. Unknown keys are errors, so a
// misspelt setting does not silently keep its default.
func LoadFile(name string) (FileConfig, error) {
	var fc FileConfig
	b, err := os.ReadFile(name)
	if err != nil {
		return fc, fmt.Errorf("%w: read server config: %v", secret.ErrInvalidArgument, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return fc, fmt.Errorf("%w: server config %s: %v", secret.ErrInvalidArgument, name, err)
	}
	if err := fc.Scheduler.check(); err != nil {
		return fc, fmt.Errorf("%w: server config %s: %v", secret.ErrInvalidArgument, name, err)
	}
	for _, p := range fc.Rotation.ExecPrograms {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fc, fmt.Errorf("%w: server config %s: rotation.exec_programs: %q is not an absolute, clean path", secret.ErrInvalidArgument, name, p)
		}
	}
	return fc, nil
}
