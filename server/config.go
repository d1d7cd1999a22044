package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/passman-dev/passman/secret"
)

// FileConfig is the server's configuration file (YAML or JSON), for
// settings an operator keeps in version control. Command-line flags
// override it. Paths are used as written (relative to the working
// directory).
//
//	addr: ":8200"
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
//	max_body_bytes: 2000000
//	token_retention: 24h   # keep expired/revoked token records this long
//	timeouts: {read_header: 10s, read: 60s, write: 120s, idle: 120s, shutdown: 30s}
//	log: {format: json, level: info}
type FileConfig struct {
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
	// TokenRetention: see Config.TokenRetention.
	TokenRetention Duration `yaml:"token_retention"`
}

// RateLimit is the rate_limit section: a token bucket per caller (token,
// or client address before authentication). Off when RPS is 0.
type RateLimit struct {
	RPS   float64 `yaml:"rps"`
	Burst int     `yaml:"burst"`
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
	return fc, nil
}
