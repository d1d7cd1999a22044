package secret

import (
	"fmt"
	"strings"
	"time"
)

// Limits of stored policy modules.
const (
	MaxPolicyNameLen = 64
	// MaxPolicySource bounds one module's Rego source.
	MaxPolicySource = 1 << 20
	// MaxPolicies bounds how many modules a store holds.
	MaxPolicies = 500
)

// PolicyModule is a Rego module the store holds (passman.Policies): added
// to the bundled policies, and to a policy directory's, by every process
// that opens the store. A name ending in "_test" is a unit test module,
// run when the set changes and never evaluated.
type PolicyModule struct {
	Name string `json:"name"`
	// Source is the module's Rego text; listings omit it.
	Source string `json:"source,omitempty"`
	// Version counts the module's puts that changed it, from 1; a module
	// deleted and put again starts over.
	Version int `json:"version"`
	// SHA256 is the hex SHA-256 of Source.
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// IsTest reports whether the module is a unit test module.
func (m PolicyModule) IsTest() bool { return IsPolicyTestName(m.Name) }

// IsPolicyTestName reports whether a module name names a unit test module,
// as `opa test` treats *_test.rego files.
func IsPolicyTestName(name string) bool { return strings.HasSuffix(name, "_test") }

// ValidatePolicyName checks a stored policy module's name: 1 to 64
// characters, starting with a-z, then a-z 0-9 _ -. No dot, slash or
// colon: the name is a URL segment, and the module's file name in
// compiler errors (store:<name>.rego).
func ValidatePolicyName(name string) error {
	if name == "" || len(name) > MaxPolicyNameLen {
		return fmt.Errorf("%w: a policy name must be 1 to %d characters", ErrInvalidArgument, MaxPolicyNameLen)
	}
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-')) {
			return fmt.Errorf("%w: a policy name must start with a-z and hold only a-z 0-9 _ -", ErrInvalidArgument)
		}
	}
	return nil
}
