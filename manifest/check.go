package manifest

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/passman-dev/passman/secret"
)

// The checks below mirror the store's metadata limits (store/record.go), so
// that a manifest which parses also applies. Each returns "" or a message
// that does not quote the checked text.

// checkText checks a free-text field: length in bytes, valid UTF-8, no
// control characters except line breaks and tabs when multiline.
func checkText(v string, maxLen int, multiline bool) string {
	if len(v) > maxLen {
		return fmt.Sprintf("%d bytes, at most %d allowed", len(v), maxLen)
	}
	for _, c := range v {
		if c == unicode.ReplacementChar {
			return "not valid UTF-8"
		}
		if unicode.IsControl(c) && !(multiline && (c == '\n' || c == '\t')) {
			if multiline {
				return fmt.Sprintf("contains control character %U (only line breaks and tabs are allowed)", c)
			}
			return fmt.Sprintf("contains control character %U; use a single line", c)
		}
	}
	return ""
}

// checkTagKey checks a tag name. Keys are echoed: they are names, and one
// that breaks the rules is shown so the user can find it.
func checkTagKey(k string) string {
	if k == "" || len(k) > secret.MaxLabelKeyLen {
		return fmt.Sprintf("tag names must be 1 to %d characters", secret.MaxLabelKeyLen)
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return fmt.Sprintf("tag name %q: allowed characters are A-Z a-z 0-9 . _ - /", k)
		}
	}
	return ""
}

// checkTagValue checks a tag value; empty is refused because the store
// reads an empty tag value as "delete this tag".
func checkTagValue(v string) string {
	if v == "" {
		return "empty tag value; remove the tag instead"
	}
	return checkText(v, secret.MaxTagValueLen, false)
}

// checkConnection checks the shape of a connection name; whether such a
// connection exists and lets the secret use it is the store's business.
func checkConnection(name string) string {
	if err := secret.ValidateConnectionName(name); err != nil {
		return trimSentinel(err)
	}
	return ""
}

// checkPolicies checks the policy directory: a relative path, so a
// manifest means the same on every machine and in CI.
func checkPolicies(p string) string {
	switch {
	case p == "":
		return ""
	case strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || filepath.IsAbs(p) || filepath.VolumeName(p) != "":
		return "must be a path relative to the manifest, such as ./policies"
	}
	return checkText(p, 4096, false)
}
