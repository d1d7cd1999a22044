package scanner

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// MaxIgnoreSize bounds a .gitleaksignore file: at about a hundred bytes an
// entry, room for over a hundred thousand.
const MaxIgnoreSize = 16 << 20

// MaxIgnoreLine bounds one line, as gitleaks' bufio.Scanner does (gitleaks
// silently stops reading at a longer line; LoadIgnore reports it).
const MaxIgnoreLine = 64 << 10

// Ignore is a parsed .gitleaksignore file.
type Ignore struct {
	content  map[string]struct{} // passman content fingerprints
	gitleaks map[string]struct{} // gitleaks fingerprints, normalized as gitleaks does
}

// LoadIgnore parses a .gitleaksignore file as gitleaks v8.30.1 does: one
// fingerprint per line, surrounding space trimmed, blank lines and lines
// starting with '#' skipped (there are no trailing comments: a '#' later in
// a line is part of the fingerprint). An entry is
//
//   - "commit:file:rule:line", which ignores that finding in that commit;
//   - "file:rule:line", which ignores it in every commit and outside git;
//   - or, beyond gitleaks, a passman content fingerprint (64 lowercase hex
//     digits, Finding.Fingerprint), which ignores that secret in that file
//     under that rule on any line.
//
// gitleaks splits an entry at every ':' (not from the right) and, when that
// gives exactly three or four fields, turns '\' into '/' in the first or
// the second field, so that entries written on Windows match; an entry
// with more fields (a file name containing ':') is kept verbatim. A 4-field
// entry may also be a file entry whose name holds one ':' (or a Windows
// drive path), and then only the part after that ':' is normalized.
// LoadIgnore does the same, so an entry drops exactly the findings gitleaks
// would; the one difference is that a leading byte order mark is dropped
// (gitleaks glues it to the first entry, which then never matches).
//
// An entry that cannot match any finding (fewer than three fields, an
// empty rule, or a last field that is not a line number as gitleaks writes
// it) is an error, as are a line longer than MaxIgnoreLine and input
// larger than MaxIgnoreSize; errors give the line number and wrap
// secret.ErrInvalidArgument. gitleaks would warn about or silently skip
// such entries; here a typo must not look like a working ignore.
func LoadIgnore(r io.Reader) (*Ignore, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxIgnoreSize+1))
	if err != nil {
		return nil, fmt.Errorf("read .gitleaksignore: %w", err)
	}
	if len(data) > MaxIgnoreSize {
		return nil, fmt.Errorf("%w: .gitleaksignore is larger than the %d MiB limit", secret.ErrInvalidArgument, MaxIgnoreSize>>20)
	}
	// A byte order mark (Windows editors) would otherwise glue itself to
	// the first entry or comment; gitleaks keeps it, so its first entry
	// never matches.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	ig := &Ignore{content: map[string]struct{}{}, gitleaks: map[string]struct{}{}}
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(line) > MaxIgnoreLine {
			return nil, fmt.Errorf("%w: .gitleaksignore line %d is longer than %d KiB", secret.ErrInvalidArgument, n, MaxIgnoreLine>>10)
		}
		entry := strings.TrimSpace(string(line))
		if entry == "" || strings.HasPrefix(entry, "#") {
			continue
		}
		if isContentFingerprint(entry) {
			ig.content[entry] = struct{}{}
			continue
		}
		norm, ok := normalizeIgnoreEntry(entry)
		if !ok {
			return nil, fmt.Errorf("%w: .gitleaksignore line %d: want commit:file:rule:line, file:rule:line or a 64-hex-digit passman fingerprint", secret.ErrInvalidArgument, n)
		}
		ig.gitleaks[norm] = struct{}{}
	}
	return ig, nil
}

// backslashToSlash is gitleaks' path normalization for ignore entries.
var backslashToSlash = strings.NewReplacer(`\`, "/")

// normalizeIgnoreEntry applies AddGitleaksIgnore's normalization, and
// reports whether the entry could match any finding at all.
func normalizeIgnoreEntry(entry string) (string, bool) {
	if !validGitleaksFingerprint(entry) {
		return "", false
	}
	s := strings.Split(entry, ":")
	switch len(s) {
	case 3:
		s[0] = backslashToSlash.Replace(s[0])
	case 4:
		s[1] = backslashToSlash.Replace(s[1])
	}
	return strings.Join(s, ":"), true
}

// Filter returns the findings not ignored, in order, and how many it
// dropped. As in gitleaks, a finding is ignored if its "file:rule:line" is
// listed, whether or not it has a commit; or if it has a commit and its
// "commit:file:rule:line" is listed; or (passman only) if its content
// fingerprint is listed. The finding's file is not normalized, so on Unix
// a finding in a file whose name holds '\' but no ':' can be ignored only
// by content fingerprint (gitleaks cannot ignore it at all). A nil Ignore
// drops nothing.
func (ig *Ignore) Filter(fs []Finding) ([]Finding, int) {
	return without(fs, ig.has)
}

func (ig *Ignore) has(f Finding) bool {
	if ig == nil {
		return false
	}
	global := Finding{File: f.File, RuleID: f.RuleID, StartLine: f.StartLine}.GitleaksFingerprint()
	if _, ok := ig.gitleaks[global]; ok {
		return true
	}
	if f.Commit != "" {
		if _, ok := ig.gitleaks[f.GitleaksFingerprint()]; ok {
			return true
		}
	}
	_, ok := ig.content[f.Fingerprint]
	return ok && f.Fingerprint != ""
}
