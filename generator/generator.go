// Package generator makes random secret values from crypto/rand. The CLI,
// the manifest's generate blocks and the rotation runner all use it, so a
// secret's strength does not depend on which front end created it.
package generator

import (
	"crypto/rand"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// Class is a named character class.
type Class string

// The character classes.
const (
	Upper   Class = "upper"
	Lower   Class = "lower"
	Digits  Class = "digits"
	Symbols Class = "symbols"
)

// alphabets maps each class to its characters. Symbols avoid quotes,
// backslash and space, which break shell, YAML and connection strings.
var alphabets = map[Class]string{
	Upper:   "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
	Lower:   "abcdefghijklmnopqrstuvwxyz",
	Digits:  "0123456789",
	Symbols: "!#$%&()*+,-./:;<=>?@[]^_{|}~",
}

// AllClasses lists the classes in canonical order.
var AllClasses = []Class{Upper, Lower, Digits, Symbols}

// Limits on a generated value.
const (
	MinLength     = 8
	MaxLength     = 4096
	DefaultLength = 32
)

// Spec describes a value to generate. Every class listed appears at least
// once in the result, so a password policy that demands one digit is met.
type Spec struct {
	Length  int     `json:"length" yaml:"length"`
	Classes []Class `json:"classes,omitempty" yaml:"classes,omitempty"`
}

// Normalize fills defaults (length 32, upper+lower+digits) and validates.
func (s Spec) Normalize() (Spec, error) {
	if s.Length == 0 {
		s.Length = DefaultLength
	}
	if len(s.Classes) == 0 {
		s.Classes = []Class{Upper, Lower, Digits}
	}
	if s.Length < MinLength || s.Length > MaxLength {
		return s, fmt.Errorf("%w: generated length %d out of range %d..%d", secret.ErrInvalidArgument, s.Length, MinLength, MaxLength)
	}
	seen := map[Class]bool{}
	for _, c := range s.Classes {
		if _, ok := alphabets[c]; !ok {
			return s, fmt.Errorf("%w: unknown character class %q (want upper, lower, digits or symbols)", secret.ErrInvalidArgument, c)
		}
		if seen[c] {
			return s, fmt.Errorf("%w: character class %q listed twice", secret.ErrInvalidArgument, c)
		}
		seen[c] = true
	}
	if len(s.Classes) > s.Length {
		return s, fmt.Errorf("%w: length %d cannot hold one of each of %d classes", secret.ErrInvalidArgument, s.Length, len(s.Classes))
	}
	s.Classes = slices.Clone(s.Classes)
	return s, nil
}

// ParseClasses parses a comma-separated class list.
func ParseClasses(s string) ([]Class, error) {
	var out []Class
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		c := Class(p)
		if _, ok := alphabets[c]; !ok {
			return nil, fmt.Errorf("%w: unknown character class %q (want upper, lower, digits or symbols)", secret.ErrInvalidArgument, p)
		}
		out = append(out, c)
	}
	return out, nil
}

// EntropyBits is the strength of a value drawn uniformly from the spec's
// alphabet (slightly overstated by the one-of-each rule; negligible at the
// minimum length).
func (s Spec) EntropyBits() float64 {
	return float64(s.Length) * math.Log2(float64(len(s.alphabet())))
}

func (s Spec) alphabet() string {
	var b strings.Builder
	for _, c := range s.Classes {
		b.WriteString(alphabets[c])
	}
	return b.String()
}

// Generate returns a new random value for spec.
func Generate(spec Spec) ([]byte, error) {
	spec, err := spec.Normalize()
	if err != nil {
		return nil, err
	}
	all := spec.alphabet()
	out := make([]byte, spec.Length)
	// One character from each class, the rest from the union, then a
	// Fisher-Yates shuffle so the guaranteed ones sit anywhere.
	for i := range out {
		set := all
		if i < len(spec.Classes) {
			set = alphabets[spec.Classes[i]]
		}
		n, err := randInt(len(set))
		if err != nil {
			return nil, err
		}
		out[i] = set[n]
	}
	for i := len(out) - 1; i > 0; i-- {
		j, err := randInt(i + 1)
		if err != nil {
			return nil, err
		}
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func randInt(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("random: %w", err)
	}
	return int(v.Int64()), nil
}
