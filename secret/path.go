package secret

import (
	"fmt"
	"strings"
)

// Path limits. A path is one or more segments joined by "/"; each segment is
// 1 to MaxSegmentLen characters from [A-Za-z0-9._-]. The limits keep keys
// short enough for every backend (etcd caps a request at 1.5 MiB, bbolt a key
// at 32 KiB) and paths readable in audit logs.
const (
	MaxSegments   = 16
	MaxSegmentLen = 128
)

// ValidatePath reports whether p is a well-formed secret path. The error wraps
// ErrInvalidPath and names the rule that p breaks, so a user can fix it without
// reading the docs. It never quotes p itself, only the offending character:
// what was typed where a path belongs may be a value pasted in by mistake.
func ValidatePath(p string) error {
	if p == "" {
		return fmt.Errorf("%w: path is empty", ErrInvalidPath)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: path contains control character %#02x at byte %d", ErrInvalidPath, c, i)
		}
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w: path must not start with '/'", ErrInvalidPath)
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("%w: path must not end with '/'", ErrInvalidPath)
	}
	segs := strings.Split(p, "/")
	if len(segs) > MaxSegments {
		return fmt.Errorf("%w: path has %d segments, at most %d allowed", ErrInvalidPath, len(segs), MaxSegments)
	}
	for i, s := range segs {
		if err := validateSegment(s, i+1); err != nil {
			return err
		}
	}
	return nil
}

func validateSegment(s string, n int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: segment %d is empty (no '//' allowed)", ErrInvalidPath, n)
	case s == "." || s == "..":
		return fmt.Errorf("%w: segment %d is %q; relative segments are not allowed", ErrInvalidPath, n, s)
	case len(s) > MaxSegmentLen:
		return fmt.Errorf("%w: segment %d is %d characters, at most %d allowed", ErrInvalidPath, n, len(s), MaxSegmentLen)
	}
	for i := 0; i < len(s); i++ {
		if !segmentChar(s[i]) {
			return fmt.Errorf("%w: segment %d contains %q; allowed characters are A-Z a-z 0-9 . _ -", ErrInvalidPath, n, quoteByte(s, i))
		}
	}
	return nil
}

// ValidatePrefix checks a list prefix: empty (everything), or a path that may
// end in "/" (a folder) or mid-segment (a name prefix).
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		return fmt.Errorf("%w: prefix must not start with '/'", ErrInvalidPath)
	}
	if err := ValidatePath(p); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}

func segmentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// quoteByte returns the (possibly multi-byte) character starting at s[i] so
// an error shows "é" rather than half of its UTF-8 encoding.
func quoteByte(s string, i int) string {
	for _, r := range s[i:] {
		return string(r)
	}
	return s[i : i+1]
}
