package secret

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on a rotation spec and a connection, so metadata stays small and
// policy input sane.
const (
	MaxConnectionNameLen  = 64
	MaxRotationParams     = 16
	MaxRotationConfig     = 32
	MaxRotationConfigKey  = 64
	MaxRotationConfigVal  = 1024
	MaxConnectionPatterns = 64
)

// GeneratedConnection is the built-in connection of rotations that only
// generate a new value in passman, with no target system to update. It
// exists in every store, needs no configuration and any path may use it.
const GeneratedConnection = "generated"

// Rotation says how a secret is rotated: which connection applies a new
// value to its target, the few per-secret parameters that connection
// allows, and how the new value is generated.
//
// A spec names a connection; it never carries a DSN, a URL, a program, a
// credential or a reference to one. Those belong to the connection, which
// only an administrator defines (see Connection): whoever may write a
// secret must not be able to choose what the server runs or where it sends
// credentials.
type Rotation struct {
	// Connection names an operator-defined Connection, or
	// GeneratedConnection.
	Connection string `json:"connection,omitempty"`
	// Params are the per-secret parameters the connection's connector
	// accepts (postgres: role or roles; github: name and, unless the
	// connection pins them, its scope).
	Params map[string]string `json:"params,omitempty"`
	// Length and Classes are the generator spec (package generator);
	// zero values take the generator's defaults.
	Length  int      `json:"length,omitempty"`
	Classes []string `json:"classes,omitempty"`
	// GracePeriod is how long the previous value stays valid after a
	// rotation before the connector revokes it (0: never revoked).
	GracePeriod Duration `json:"grace_period,omitempty"`

	// LegacyConnector and LegacyConfig are the spec's form before
	// connections existed, when a secret's writer chose the connector and
	// its whole configuration. They are only ever read from old records:
	// no rotation runs on them, and `passman connection migrate` moves them
	// to connections.
	LegacyConnector string            `json:"connector,omitempty"`
	LegacyConfig    map[string]string `json:"config,omitempty"`
}

// Legacy reports whether r is in the pre-connection form.
func (r *Rotation) Legacy() bool {
	return r != nil && (r.LegacyConnector != "" || len(r.LegacyConfig) > 0)
}

// Validate checks the spec's shape; whether the connection exists and lets
// the secret use it is the rotation runner's business.
func (r *Rotation) Validate() error {
	if r == nil {
		return nil
	}
	if r.Legacy() {
		return fmt.Errorf("%w: a rotation spec names a connection (rotation.connection) and its parameters; connector and config belong to the connection, which an administrator defines (see 'passman connection put' and 'passman connection migrate')", ErrInvalidArgument)
	}
	if err := ValidateConnectionName(r.Connection); err != nil {
		return err
	}
	if len(r.Params) > MaxRotationParams {
		return fmt.Errorf("%w: rotation params has %d keys, at most %d", ErrInvalidArgument, len(r.Params), MaxRotationParams)
	}
	if err := validateConfigMap("rotation param", r.Params); err != nil {
		return err
	}
	for k, v := range r.Params {
		if strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "secret:") {
			return fmt.Errorf("%w: rotation param %s: references (env:, secret:) are resolved only in a connection's configuration", ErrInvalidArgument, k)
		}
	}
	if r.Length < 0 {
		return fmt.Errorf("%w: rotation length must not be negative", ErrInvalidArgument)
	}
	if r.GracePeriod < 0 {
		return fmt.Errorf("%w: rotation grace period must not be negative", ErrInvalidArgument)
	}
	return nil
}

// Connection is an operator-defined way to reach a target system: which
// connector, its configuration (an admin DSN, a token, a webhook endpoint
// and key, a program, each credential as an env:NAME or secret:PATH
// reference resolved by passman with the connection's authority, never
// the caller's), and which secrets may use it. Only an administrator
// creates, changes or reads one; a secret's rotation spec only names it.
type Connection struct {
	Name      string            `json:"name"`
	Connector string            `json:"connector"`
	Config    map[string]string `json:"config,omitempty"`
	// AllowedPaths are the secret paths whose rotation may use the
	// connection: an exact path, or a prefix ending in "*" ("team-a/*").
	// Empty allows none.
	AllowedPaths []string `json:"allowed_paths"`
	// AllowedRoles are, for postgres connections, the roles a secret's
	// spec may name: a role, or a prefix ending in "*". Empty allows none.
	AllowedRoles []string `json:"allowed_roles,omitempty"`
	// AllowedNames are, for github connections, the Actions secret names
	// a secret's spec may name, in the same form. Empty allows none.
	AllowedNames []string `json:"allowed_names,omitempty"`

	CreatedAt time.Time `json:"created_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// ValidateConnectionName checks a connection's (or a connector's) name:
// 1 to 64 characters, starting with a-z, then a-z 0-9 _ -.
func ValidateConnectionName(name string) error {
	if name == "" || len(name) > MaxConnectionNameLen {
		return fmt.Errorf("%w: a connection name must be 1 to %d characters", ErrInvalidArgument, MaxConnectionNameLen)
	}
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-')) {
			return fmt.Errorf("%w: a connection name must start with a-z and hold only a-z 0-9 _ -", ErrInvalidArgument)
		}
	}
	return nil
}

// Validate checks the connection's shape; whether its connector exists and
// its configuration makes sense is the rotation package's business.
func (c *Connection) Validate() error {
	if err := ValidateConnectionName(c.Name); err != nil {
		return err
	}
	if c.Name == GeneratedConnection {
		return fmt.Errorf("%w: connection %q is built in", ErrInvalidArgument, GeneratedConnection)
	}
	if err := ValidateConnectionName(c.Connector); err != nil {
		return fmt.Errorf("connector: %w", err)
	}
	if len(c.Config) > MaxRotationConfig {
		return fmt.Errorf("%w: connection config has %d keys, at most %d", ErrInvalidArgument, len(c.Config), MaxRotationConfig)
	}
	if err := validateConfigMap("connection config", c.Config); err != nil {
		return err
	}
	if len(c.AllowedPaths) == 0 {
		return fmt.Errorf("%w: a connection needs allowed_paths: the secrets that may use it (a path, or a prefix ending in *)", ErrInvalidArgument)
	}
	for _, p := range c.AllowedPaths {
		if err := validPathPattern(p); err != nil {
			return fmt.Errorf("allowed_paths: %w", err)
		}
	}
	if len(c.AllowedPaths) > MaxConnectionPatterns || len(c.AllowedRoles) > MaxConnectionPatterns || len(c.AllowedNames) > MaxConnectionPatterns {
		return fmt.Errorf("%w: at most %d allowed paths, roles and names each", ErrInvalidArgument, MaxConnectionPatterns)
	}
	for what, list := range map[string][]string{"allowed_roles": c.AllowedRoles, "allowed_names": c.AllowedNames} {
		for _, r := range list {
			if r == "" || len(r) > MaxRotationConfigKey || !utf8.ValidString(r) || strings.ContainsFunc(r, func(r rune) bool { return isControl(r) || unicode.IsSpace(r) }) || strings.Contains(strings.TrimSuffix(r, "*"), "*") {
				return fmt.Errorf("%w: %s: each is a name or a prefix ending in *, 1 to %d bytes of printable UTF-8 without spaces", ErrInvalidArgument, what, MaxRotationConfigKey)
			}
		}
	}
	return nil
}

// AllowsPath reports whether a secret at path may use the connection.
func (c *Connection) AllowsPath(path string) bool { return MatchPattern(c.AllowedPaths, path) }

// MatchPattern matches s against an allow-list: s equals a pattern, or
// starts with a pattern's text before its trailing "*". An empty s
// matches nothing.
func MatchPattern(patterns []string, s string) bool {
	if s == "" {
		return false
	}
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(s, prefix) {
				return true
			}
		} else if p == s {
			return true
		}
	}
	return false
}

// validPathPattern accepts a secret path, or a folder followed by "*"
// ("team-a/*"; "*" alone allows every path). The "*" must follow a "/":
// "team-a*" would also allow "team-admin/...".
func validPathPattern(p string) error {
	prefix, wild := strings.CutSuffix(p, "*")
	if !wild {
		return ValidatePath(p)
	}
	if strings.Contains(prefix, "*") {
		return fmt.Errorf("%w: %q: * is allowed only at the end", ErrInvalidArgument, p)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("%w: %q: * must follow a / (%s/*), or a path must be whole", ErrInvalidArgument, p, strings.TrimSuffix(prefix, "/"))
	}
	return ValidatePrefix(prefix)
}

func validateConfigMap(what string, m map[string]string) error {
	for k, v := range m {
		if k == "" || len(k) > MaxRotationConfigKey || !utf8.ValidString(k) || strings.ContainsFunc(k, isControl) {
			return fmt.Errorf("%w: %s key must be 1 to %d bytes of printable UTF-8", ErrInvalidArgument, what, MaxRotationConfigKey)
		}
		if len(v) > MaxRotationConfigVal || !utf8.ValidString(v) {
			return fmt.Errorf("%w: %s %s: value must be at most %d bytes of UTF-8", ErrInvalidArgument, what, k, MaxRotationConfigVal)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// RotationState is where a secret's last rotation stands.
type RotationState string

// Rotation states. InProgress with a Step is what the next run resumes or
// rolls back after a crash.
const (
	RotationInProgress RotationState = "in_progress"
	RotationSucceeded  RotationState = "succeeded"
	RotationRolledBack RotationState = "rolled_back"
	// RotationFailed: the rollback itself failed; the target may hold the
	// pending value, which is kept for an operator.
	RotationFailed RotationState = "failed"
)

// RotationStep is a step of the staged protocol.
type RotationStep string

// The steps, in order.
const (
	StepCreate RotationStep = "create"
	StepSet    RotationStep = "set"
	StepTest   RotationStep = "test"
	StepFinish RotationStep = "finish"
)

// RotationStatus records a secret's last (or running) rotation, written by
// the rotation runner through UpdateMetadata after each step, so every
// step is durable and audited.
type RotationStatus struct {
	State RotationState `json:"state"`
	Step  RotationStep  `json:"step,omitempty"`
	// From is the current version when the rotation began; Pending the
	// version it creates.
	From    int    `json:"from,omitempty"`
	Pending int    `json:"pending,omitempty"`
	Trigger string `json:"trigger,omitempty"` // manual, due, leak: ...
	// Error says why the last rotation failed; it never holds a value.
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// LastSuccess is when a rotation last succeeded.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// RevokeAfter is when the previous version may be revoked; zero once
	// it has been, or when it never is.
	RevokeAfter time.Time `json:"revoke_after,omitzero"`
	// RevokeVersion is the version RevokeAfter applies to.
	RevokeVersion int `json:"revoke_version,omitempty"`
}
