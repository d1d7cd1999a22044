package scanner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/passman-dev/passman/secret"
)

// MaxBaselineSize is the largest baseline LoadBaseline reads. A gitleaks
// report of a large history runs to megabytes; 64 MiB leaves room while
// keeping a wrong file (a disk image, /dev/zero) from exhausting memory.
const MaxBaselineSize = 64 << 20

// Baseline is a set of known findings from an earlier report, to be
// suppressed so that a scan fails only on new ones.
type Baseline struct {
	content  map[string]struct{} // passman content fingerprints
	gitleaks map[string]struct{} // gitleaks fingerprints
}

// baselineEntry holds the only fields a baseline needs. A gitleaks report
// also carries Secret and Match, the raw secret text; leaving them out of
// the struct means the decoder skips them rather than copying them into
// strings that outlive the parse.
type baselineEntry struct {
	RuleID      string
	File        string
	StartLine   int
	Commit      string
	Fingerprint string
}

// LoadBaseline reads a JSON report, a JSON array of findings, as written by
// Write's json format or by gitleaks --report-format json. An entry whose
// Fingerprint is a passman content fingerprint (64 lowercase hex digits)
// suppresses findings with that fingerprint, wherever they now are; any
// other entry is a gitleaks finding and suppresses the finding with the
// same GitleaksFingerprint, taken from its Fingerprint or, if that is
// absent (gitleaks before 8.10) or malformed, built from its Commit, File,
// RuleID and StartLine.
//
// Input that is not such an array, is larger than MaxBaselineSize, or has
// an entry with neither a usable fingerprint nor RuleID and File is an
// error wrapping secret.ErrInvalidArgument. Errors give positions, never
// input text: a gitleaks baseline holds the raw secrets.
func LoadBaseline(r io.Reader) (*Baseline, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBaselineSize+1))
	// The buffer holds any raw secrets in the report; wipe it rather than
	// leave them in the heap until it happens to be reused.
	defer clear(data)
	if err != nil {
		return nil, fmt.Errorf("read baseline: %w", err)
	}
	if len(data) > MaxBaselineSize {
		return nil, fmt.Errorf("%w: baseline is larger than the %d MiB limit", secret.ErrInvalidArgument, MaxBaselineSize>>20)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: baseline is empty, want a JSON array of findings", secret.ErrInvalidArgument)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: baseline: %s", secret.ErrInvalidArgument, jsonProblem(err, data))
	}
	defer func() {
		for _, m := range raw {
			clear(m)
		}
	}()
	if raw == nil { // null
		return nil, fmt.Errorf("%w: baseline: want a JSON array of findings, got null", secret.ErrInvalidArgument)
	}
	b := &Baseline{content: map[string]struct{}{}, gitleaks: map[string]struct{}{}}
	for i, m := range raw {
		if err := b.add(m); err != nil {
			return nil, fmt.Errorf("%w: baseline entry %d: %w", secret.ErrInvalidArgument, i+1, err)
		}
	}
	return b, nil
}

// add records one entry. Its errors name fields, never their values.
func (b *Baseline) add(m json.RawMessage) error {
	if kind := jsonKind(m); kind != "object" {
		return fmt.Errorf("want a finding object, got %s", kind)
	}
	var e baselineEntry
	if err := json.Unmarshal(m, &e); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("field %s has the wrong JSON type", te.Field)
		}
		return errors.New("malformed finding")
	}
	if isContentFingerprint(e.Fingerprint) {
		b.content[e.Fingerprint] = struct{}{}
		return nil
	}
	if validGitleaksFingerprint(e.Fingerprint) {
		b.gitleaks[e.Fingerprint] = struct{}{}
		return nil
	}
	if e.RuleID == "" || e.File == "" {
		return errors.New("no passman or gitleaks Fingerprint, and no RuleID and File to match by")
	}
	b.gitleaks[Finding{RuleID: e.RuleID, File: e.File, StartLine: e.StartLine, Commit: e.Commit}.GitleaksFingerprint()] = struct{}{}
	return nil
}

// Filter returns the findings not in the baseline, in order, and how many
// it suppressed. A nil Baseline suppresses nothing.
func (b *Baseline) Filter(fs []Finding) (kept []Finding, suppressed int) {
	return without(fs, b.has)
}

// without returns the findings drop does not match, in order, and how
// many it dropped.
func without(fs []Finding, drop func(Finding) bool) ([]Finding, int) {
	var kept []Finding
	for _, f := range fs {
		if !drop(f) {
			kept = append(kept, f)
		}
	}
	return kept, len(fs) - len(kept)
}

func (b *Baseline) has(f Finding) bool {
	if b == nil {
		return false
	}
	if _, ok := b.content[f.Fingerprint]; ok && f.Fingerprint != "" {
		return true
	}
	_, ok := b.gitleaks[f.GitleaksFingerprint()]
	return ok
}

// isContentFingerprint reports whether s is a Finding.Fingerprint: the
// lowercase hex of a SHA-256. A gitleaks fingerprint always has colons, so
// the two cannot be confused.
func isContentFingerprint(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validGitleaksFingerprint reports whether s could equal some finding's
// GitleaksFingerprint: "[commit:]file:rule:line" with a rule and a line
// number as strconv.Itoa writes it. Files may contain ':', so only the last
// two fields can be checked; the file may be empty (gitleaks' stdin scans).
func validGitleaksFingerprint(s string) bool {
	rest, line, ok := cutLast(s, ":")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(line)
	if err != nil || n < 0 || strconv.Itoa(n) != line {
		return false
	}
	_, rule, ok := cutLast(rest, ":")
	return ok && rule != ""
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// jsonProblem describes a failure to decode data as a JSON array without
// quoting it: encoding/json's messages quote offending input (a character,
// a number literal), and that input may be a secret.
func jsonProblem(err error, data []byte) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON (syntax error at byte %d)", se.Offset)
	case errors.As(err, &te):
		return "want a JSON array of findings, got " + jsonKind(data)
	default:
		return "not valid JSON"
	}
}

// jsonKind names the kind of the JSON value data holds, from its first
// byte; data is known to be valid JSON.
func jsonKind(data []byte) string {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}
