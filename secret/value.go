package secret

import (
	"fmt"
	"io"
)

const redacted = "[redacted]"

// Value holds secret bytes. Every way of printing or marshalling it yields
// "[redacted]", so a value that strays into a log line, an error or a JSON
// document does not leak; only Reveal returns the bytes.
type Value struct {
	b []byte
}

// NewValue wraps b (not copied).
func NewValue(b []byte) Value { return Value{b: b} }

// Reveal returns the secret bytes. Callers own the decision to print them.
func (v Value) Reveal() []byte { return v.b }

// Len is the value's length in bytes.
func (v Value) Len() int { return len(v.b) }

// String implements fmt.Stringer with a redaction.
func (v Value) String() string { return redacted }

// GoString implements fmt.GoStringer with a redaction.
func (v Value) GoString() string { return redacted }

// Format makes every verb (%s, %v, %x, %q, %#v …) print the redaction.
func (v Value) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON encodes the redaction, never the bytes.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes the redaction, never the bytes.
func (v Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Wipe overwrites the bytes with zeros. Go may have copied them elsewhere;
// this only shortens the window in which this copy sits in memory.
func (v Value) Wipe() {
	for i := range v.b {
		v.b[i] = 0
	}
}

// Versioned is a value with the version it came from.
type Versioned struct {
	Path  string      `json:"path"`
	Info  VersionInfo `json:"info"`
	Value Value       `json:"value"`
}
