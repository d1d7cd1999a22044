package secret

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits on a rotation spec, so metadata stays small and policy input sane.
const (
	MaxConnectorLen      = 64
	MaxRotationConfig    = 32
	MaxRotationConfigKey = 64
	MaxRotationConfigVal = 1024
)

// Rotation says how a secret is rotated: which connector applies a new
// value to which target, and how the new value is generated. Config holds
// no secrets: a connector's own credentials are named by reference (an
// environment variable or another secret's path), never stored here.
type Rotation struct {
	Connector string            `json:"connector"`
	Config    map[string]string `json:"config,omitempty"`
	// Length and Classes are the generator spec (package generator);
	// zero values take the generator's defaults.
	Length  int      `json:"length,omitempty"`
	Classes []string `json:"classes,omitempty"`
	// GracePeriod is how long the previous value stays valid after a
	// rotation before the connector revokes it (0: never revoked).
	GracePeriod Duration `json:"grace_period,omitempty"`
}

// Validate checks the spec's shape; whether the connector exists and its
// config makes sense is the rotation engine's business.
func (r *Rotation) Validate() error {
	if r == nil {
		return nil
	}
	if r.Connector == "" || len(r.Connector) > MaxConnectorLen {
		return fmt.Errorf("%w: rotation connector must be 1 to %d characters", ErrInvalidArgument, MaxConnectorLen)
	}
	for i, c := range r.Connector {
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-')) {
			return fmt.Errorf("%w: rotation connector must start with a-z and hold only a-z 0-9 _ -", ErrInvalidArgument)
		}
	}
	if len(r.Config) > MaxRotationConfig {
		return fmt.Errorf("%w: rotation config has %d keys, at most %d", ErrInvalidArgument, len(r.Config), MaxRotationConfig)
	}
	for k, v := range r.Config {
		if k == "" || len(k) > MaxRotationConfigKey || !utf8.ValidString(k) {
			return fmt.Errorf("%w: rotation config key must be 1 to %d bytes of UTF-8", ErrInvalidArgument, MaxRotationConfigKey)
		}
		if len(v) > MaxRotationConfigVal || !utf8.ValidString(v) {
			return fmt.Errorf("%w: rotation config %s: value must be at most %d bytes of UTF-8", ErrInvalidArgument, k, MaxRotationConfigVal)
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
// the rotation engine through UpdateMetadata after each step, so every
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
