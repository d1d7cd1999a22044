// Package scanner finds leaked secrets in files: everything gitleaks' rules
// detect, plus passman's own managed values (package scanner/managed).
//
// A Finding never carries secret text. gitleaks reports the raw match; the
// scanner turns it into a position, a rule and a content fingerprint inside
// this package and drops the rest, so no output, error or log holds it.
// gitleaks' global logger is silenced for the same reason (it logs raw
// secrets at debug and trace level).
package scanner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/logging"
	gitleaksregexp "github.com/zricethezav/gitleaks/v8/regexp"

	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/scanner/managed"
	"github.com/passman-dev/passman/secret"
)

// DefaultMaxFileSize is the file size limit when Options.MaxFileSize is 0.
const DefaultMaxFileSize = 50 << 20

// ManagedRuleID is the RuleID of a finding that is a passman-managed value.
const ManagedRuleID = "passman-managed"

// binarySniffLen is how much of a file is searched for a NUL byte to decide
// that it is binary, as git and grep do.
const binarySniffLen = 8 << 10

// maxDecodeDepth is gitleaks' CLI default for --max-decode-depth.
const maxDecodeDepth = 5

// engineVersion changes whenever the scanner would find something
// different in the same input, or record it differently, invalidating
// cached results. 2: findings carry Column and EndCol, which results
// cached before lack (a SARIF region or annotation at column 0).
const engineVersion = "passman-scan/2"

// Options configure a Scanner.
type Options struct {
	// ConfigPath is a .gitleaks.toml; "" means the default rules (Rules).
	// As with gitleaks, the file's rules replace the defaults unless it
	// sets [extend] useDefault = true ([extend] path and url are rejected).
	ConfigPath string
	// Rules is the default rule set: RulesPassman ("" too) or
	// RulesGitleaks.
	Rules string
	// Managed, when set, recognises passman's own secrets; *fpindex.Index
	// satisfies it.
	Managed managed.Index
	// Confirm confirms Managed's candidates: the store (core.Local,
	// client.Client), which answers only for secrets the caller may read.
	// nil means Managed confirms its own (a local-form *fpindex.Index).
	Confirm fpindex.Confirmer
	// MaxFileSize bounds the files scanned; 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// ShowSecrets puts each finding's secret text in Finding.Secret, for
	// triage at a terminal (gitleaks' --redact=0). Write refuses such
	// findings in the CI formats, and a git scan neither reads nor fills
	// the commit cache, which must never hold secret text.
	ShowSecrets bool
}

// Scanner scans files for leaked secrets. It is immutable once built, so
// concurrent scans are safe if Options.Managed is safe for concurrent use.
type Scanner struct {
	rules   *ruleBook
	matcher *managed.Matcher // nil without an index
	confirm *confirmer       // with matcher
	maxSize int64
	// rulesHash identifies everything that decides a scan's findings (the
	// engine, the rules, the managed index), keying the commit cache.
	rulesHash string
	// commitAllowlists: some allowlist names commits, so the same content
	// can have different findings in different commits.
	commitAllowlists bool
	show             bool
}

// redacted is Finding.Secret without Options.ShowSecrets.
const redacted = "REDACTED"

// Finding is one leaked secret. Its JSON field names are gitleaks' report
// names where gitleaks has the field, so tools reading gitleaks' JSON read
// these too; Managed is passman's own.
type Finding struct {
	RuleID      string `json:"RuleID"`
	Description string `json:"Description"`
	// File is the path relative to the scanned root, '/'-separated, or the
	// name given to ScanReader.
	File string `json:"File"`
	// Lines are 1-based; the span is the rule's whole match (which may
	// include a key name), end inclusive. StartColumn and EndColumn are
	// gitleaks' numbers for the same match, as its reports' field names
	// promise: 1-based bytes on the first line of what gitleaks scans as
	// one fragment (a file, a run of added lines), one more on its later
	// lines. Column and EndCol (passman's own) are the true 1-based byte
	// columns, which the text, SARIF and annotation reports show. A
	// path-only rule's finding has zero positions.
	StartLine   int     `json:"StartLine"`
	StartColumn int     `json:"StartColumn"`
	EndLine     int     `json:"EndLine"`
	EndColumn   int     `json:"EndColumn"`
	Column      int     `json:"Column,omitempty"`
	EndCol      int     `json:"EndCol,omitempty"`
	Entropy     float32 `json:"Entropy,omitempty"`
	// Secret is "REDACTED": the raw text never leaves this package, unless
	// the scan was built with Options.ShowSecrets.
	Secret string `json:"Secret"`
	// Fingerprint is the hex SHA-256 of RuleID, File and the SHA-256 of the
	// secret, NUL-separated: stable when lines move, unlike gitleaks'.
	Fingerprint string `json:"Fingerprint"`
	// Managed is the passman version whose value this is (RuleID
	// ManagedRuleID only).
	Managed *secret.FingerprintMatch `json:"Managed,omitempty"`
	// Response says what was done about a managed secret's leak (scan
	// --respond), such as "rotated to v4".
	Response []string `json:"Response,omitempty"`
	// Tags are the rule's tags from the gitleaks config.
	Tags []string `json:"Tags,omitempty"`

	// Commit, Author, Email and Date (RFC 3339, UTC) name the commit that
	// first introduced the secret in File; empty outside git scans.
	Commit string `json:"Commit,omitempty"`
	Author string `json:"Author,omitempty"`
	Email  string `json:"Email,omitempty"`
	Date   string `json:"Date,omitempty"`
}

// GitleaksFingerprint is the finding's identity in gitleaks' own terms,
// "commit:file:rule:line" ("file:rule:line" outside git), as written in a
// .gitleaksignore file.
func (f Finding) GitleaksFingerprint() string {
	id := fmt.Sprintf("%s:%s:%d", f.File, f.RuleID, f.StartLine)
	if f.Commit != "" {
		id = f.Commit + ":" + id
	}
	return id
}

// Stats count what a scan read and skipped.
type Stats struct {
	Files         int64 `json:"files"`          // files (in git: runs of added lines) scanned
	Bytes         int64 `json:"bytes"`          // bytes scanned
	SkippedBinary int   `json:"skipped_binary"` // binary files (a NUL byte in the first 8 KiB; in git, git's own test)
	SkippedLarge  int   `json:"skipped_large"`  // files larger than MaxFileSize

	Commits       int  `json:"commits,omitempty"`        // commits in a git scan
	CachedCommits int  `json:"cached_commits,omitempty"` // of which found in the cache
	Shallow       bool `json:"shallow,omitempty"`        // the repository is a shallow clone: history is incomplete
}

func (s *Stats) add(o Stats) {
	s.Files += o.Files
	s.Bytes += o.Bytes
	s.SkippedBinary += o.SkippedBinary
	s.SkippedLarge += o.SkippedLarge
}

// silenceOnce silences gitleaks' package-level logger, which would write
// raw secrets to stderr at debug level. It is gitleaks' global, not ours.
var silenceOnce sync.Once

// New loads and validates the rules. A bad regex or config is an error
// wrapping secret.ErrInvalidArgument that names the rule.
func New(opts Options) (*Scanner, error) {
	silenceOnce.Do(func() { logging.Logger = zerolog.Nop() })
	if opts.MaxFileSize < 0 {
		return nil, fmt.Errorf("%w: negative max file size", secret.ErrInvalidArgument)
	}
	s := &Scanner{maxSize: opts.MaxFileSize, show: opts.ShowSecrets}
	defaults, err := defaultRules(opts.Rules)
	if err != nil {
		return nil, err
	}
	if opts.ConfigPath == "" {
		// The defaults are known good and have no commit allowlists:
		// they are parsed and compiled when a scan needs them.
		sources, err := defaultSources(opts.Rules)
		if err != nil {
			return nil, err
		}
		s.rules = lazyBook(sources...)
	} else {
		cfg, err := loadConfig(opts.ConfigPath, defaults)
		if err != nil {
			return nil, err
		}
		s.rules = eagerBook(cfg)
		s.commitAllowlists = hasCommitAllowlists(cfg)
	}
	if s.maxSize == 0 {
		s.maxSize = DefaultMaxFileSize
	}
	if opts.Managed != nil {
		c := opts.Confirm
		if c == nil {
			local, ok := opts.Managed.(interface{ Local() bool })
			if c, _ = opts.Managed.(fpindex.Confirmer); c == nil || !ok || !local.Local() {
				return nil, fmt.Errorf("%w: a shareable fingerprint index needs the store to confirm its candidates", secret.ErrPrecondition)
			}
		}
		s.matcher = managed.New(opts.Managed)
		s.confirm = newConfirmer(c, opts.Managed)
	}
	s.rulesHash, err = rulesHash(opts, defaults)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// rulesHash digests what decides a scan's findings, or returns "" when
// that cannot be known (a managed index without a digest): then nothing is
// cached.
func rulesHash(opts Options, defaults string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00", engineVersion, gitleaksregexp.Version, maxDecodeDepth, opts.MaxFileSize)
	h.Write([]byte(defaults))
	h.Write([]byte{0})
	if opts.ConfigPath != "" {
		b, err := os.ReadFile(opts.ConfigPath)
		if err != nil {
			return "", fmt.Errorf("%w: read gitleaks config: %v", secret.ErrInvalidArgument, err)
		}
		h.Write(b)
	}
	h.Write([]byte{0})
	if opts.Managed != nil {
		d, ok := opts.Managed.(interface{ Digest() string })
		if !ok {
			return "", nil
		}
		h.Write([]byte(d.Digest()))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hasCommitAllowlists(cfg config.Config) bool {
	for _, a := range cfg.Allowlists {
		if len(a.Commits) > 0 {
			return true
		}
	}
	for _, r := range cfg.Rules {
		for _, a := range r.Allowlists {
			if len(a.Commits) > 0 {
				return true
			}
		}
	}
	return false
}

// ScanReader scans one file or stream (stdin) reported as name. Content
// larger than MaxFileSize is an error wrapping secret.ErrTooLarge; binary
// content is skipped and counted.
func (s *Scanner) ScanReader(ctx context.Context, name string, r io.Reader) ([]Finding, Stats, error) {
	var st Stats
	b, err := io.ReadAll(io.LimitReader(r, s.maxSize+1))
	if err != nil {
		return nil, st, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > s.maxSize {
		return nil, st, fmt.Errorf("%w: %s is larger than %d bytes", secret.ErrTooLarge, name, s.maxSize)
	}
	cfg, err := s.rules.forContent(b)
	if err != nil {
		return nil, st, err
	}
	out, err := s.scanContent(ctx, s.detector(ctx, cfg), name, b, &st)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, st, err
	}
	return finish(out), st, nil
}

// ScanDir scans the regular files under root. It skips .git directories and
// symbolic links, and skips and counts binary and oversized files. A file
// it cannot read fails the scan: a leak scanner must not pass by omission.
func (s *Scanner) ScanDir(ctx context.Context, root string) ([]Finding, Stats, error) {
	var st Stats
	var out []Finding
	// Files are held until smallScan bytes are read: a small tree's
	// content decides which rules are compiled (see ruleBook).
	var det *detect.Detector
	type held struct {
		name string
		b    []byte
	}
	var pending []held
	size := 0
	flush := func(cfg config.Config) error {
		det = s.detector(ctx, cfg)
		for _, h := range pending {
			fs, err := s.scanContent(ctx, det, h.name, h.b, &st)
			out = append(out, fs...)
			if err != nil {
				return err
			}
		}
		pending = nil
		return nil
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scan %s: %w", p, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() { // symlinks, devices, sockets, pipes
			return nil
		}
		name, err := filepath.Rel(root, p)
		if err != nil || name == "." {
			name = filepath.Base(p)
		}
		name = filepath.ToSlash(name)
		b, err := s.readFile(p, &st)
		if err != nil || b == nil {
			return err
		}
		if det == nil {
			pending = append(pending, held{name, b})
			if size += len(b); size <= smallScan {
				return nil
			}
			cfg, err := s.rules.all()
			if err != nil {
				return err
			}
			return flush(cfg)
		}
		fs, err := s.scanContent(ctx, det, name, b, &st)
		out = append(out, fs...)
		return err
	})
	if err == nil && det == nil {
		contents := make([][]byte, len(pending))
		for i, h := range pending {
			contents[i] = h.b
		}
		var cfg config.Config
		if cfg, err = s.rules.forContent(contents...); err == nil {
			err = flush(cfg)
		}
	}
	if err != nil {
		return nil, st, err
	}
	return finish(out), st, nil
}

// smallScan is the most content a scan holds back to compile only the
// rules it needs; beyond it compiling them all costs less than holding it.
const smallScan = 4 << 20

// readFile returns p's content, or nil if it is skipped as too large.
func (s *Scanner) readFile(p string, st *Stats) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, s.maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("scan: read %s: %w", p, err)
	}
	if int64(len(b)) > s.maxSize {
		st.SkippedLarge++
		return nil, nil
	}
	return b, nil
}

// detector builds the gitleaks Detector for one scan: its findings and
// state accumulate, so it is never shared between scans.
func (s *Scanner) detector(ctx context.Context, cfg config.Config) *detect.Detector {
	d := detect.NewDetectorContext(ctx, cfg)
	// Redact is 0 only so that the secret can be fingerprinted: findings
	// come back from DetectContext to scanContent, which redacts them at
	// once; they are never added to the Detector, printed or logged.
	d.Redact = 0
	d.Verbose = false
	// gitleaks' CLI decodes base64, hex, percent and unicode escapes up
	// to 5 levels deep by default (--max-decode-depth); the library's
	// zero value would not decode at all.
	d.MaxDecodeDepth = maxDecodeDepth
	return d
}

// scanContent scans one file's content, counting it in st.
func (s *Scanner) scanContent(ctx context.Context, det *detect.Detector, name string, b []byte, st *Stats) ([]Finding, error) {
	if bytes.IndexByte(b[:min(len(b), binarySniffLen)], 0) >= 0 {
		st.SkippedBinary++
		return nil, nil
	}
	st.Files++
	st.Bytes += int64(len(b))
	return s.scanFragment(ctx, det, name, b, 1, "")
}

// scanFragment scans text from one file whose first line is line
// startLine: a whole file, or a run of lines a commit added (commit names
// it, for gitleaks' commit allowlists). A managed candidate is confirmed
// before the fragment's findings are returned; a failed confirmation fails
// the scan (a leak scanner must not pass by omission).
func (s *Scanner) scanFragment(ctx context.Context, det *detect.Detector, name string, b []byte, startLine int, commit string) ([]Finding, error) {
	var out []Finding
	if s.matcher != nil {
		cands := s.matcher.Find(b)
		known, err := s.confirm.resolve(ctx, cands)
		if err != nil {
			return nil, err
		}
		var starts []int // only when something matched: most fragments hold no managed secret
		for _, m := range cands {
			for _, fm := range known[m.Fingerprint] {
				if starts == nil {
					starts = lineStarts(b)
				}
				off := starts[m.Line-1] + m.Column - 1
				fm.Stages = slices.Clone(fm.Stages) // the confirmer's slice is not ours to hand out
				out = append(out, Finding{
					RuleID:      ManagedRuleID,
					Description: "passman-managed secret",
					File:        name,
					StartLine:   startLine + m.Line - 1,
					StartColumn: m.Column,
					EndLine:     startLine + m.Line - 1,
					EndColumn:   m.Column + m.Length - 1,
					Column:      m.Column,
					EndCol:      m.Column + m.Length - 1,
					Secret:      "REDACTED",
					Fingerprint: ContentFingerprint(ManagedRuleID, name, b[off:off+m.Length]),
					Managed:     &fm,
				})
				if s.show {
					out[len(out)-1].Secret = string(b[off : off+m.Length])
				}
			}
		}
	}
	managedHits := len(out)
	//lint:ignore SA1019 DetectContext takes detect.Fragment in v8.
	frag := detect.Fragment{Raw: string(b), FilePath: name, StartLine: startLine, CommitSHA: commit}
	for _, g := range det.DetectContext(ctx, frag) {
		if sw := s.rules.stopwordsFor(g.RuleID); sw != nil && sw.match(g.Secret) {
			continue // gitleaks' allowlist for the rule (see splitStopwords)
		}
		f := Finding{
			RuleID:      g.RuleID,
			Description: g.Description,
			File:        name,
			StartLine:   g.StartLine,
			StartColumn: g.StartColumn,
			EndLine:     g.EndLine,
			EndColumn:   g.EndColumn,
			Entropy:     g.Entropy,
			Secret:      "REDACTED",
			Fingerprint: ContentFingerprint(g.RuleID, name, []byte(g.Secret)),
			Tags:        ruleTags(g.Tags),
		}
		// gitleaks counts the preceding newline as a line's first column
		// on every line but the fragment's first.
		f.Column, f.EndCol = f.StartColumn, f.EndColumn
		if f.StartLine > startLine {
			f.Column--
		}
		if f.EndLine > startLine {
			f.EndCol--
		}
		if s.show {
			f.Secret = g.Secret
		}
		if !coversManaged(f, out[:managedHits]) {
			out = append(out, f)
		}
	}
	return out, nil
}

// ruleTags copies gitleaks' tags: a finding's slice may share the rule's
// backing array.
func ruleTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return slices.Clone(tags)
}

// coversManaged reports whether f's span contains a managed finding's: the
// same secret, reported once as the more specific managed finding.
func coversManaged(f Finding, hits []Finding) bool {
	for _, m := range hits {
		startsBefore := f.StartLine < m.StartLine || f.StartLine == m.StartLine && f.Column <= m.Column
		endsAfter := f.EndLine > m.EndLine || f.EndLine == m.EndLine && f.EndCol >= m.EndCol
		if startsBefore && endsAfter {
			return true
		}
	}
	return false
}

// finish sorts findings by file, line, column and rule (a managed finding's
// path and version break ties) and keeps one per (file, line, column, rule).
func finish(fs []Finding) []Finding {
	slices.SortFunc(fs, func(a, b Finding) int {
		if c := compareKey(a, b); c != 0 {
			return c
		}
		if a.Managed != nil && b.Managed != nil {
			if c := strings.Compare(a.Managed.Path, b.Managed.Path); c != 0 {
				return c
			}
			return a.Managed.Version - b.Managed.Version
		}
		return 0
	})
	return slices.CompactFunc(fs, func(a, b Finding) bool { return compareKey(a, b) == 0 })
}

func compareKey(a, b Finding) int {
	if c := strings.Compare(a.File, b.File); c != 0 {
		return c
	}
	if a.StartLine != b.StartLine {
		return a.StartLine - b.StartLine
	}
	if a.StartColumn != b.StartColumn {
		return a.StartColumn - b.StartColumn
	}
	return strings.Compare(a.RuleID, b.RuleID)
}

// ContentFingerprint is the content fingerprint documented on
// Finding.Fingerprint, for tools that hold a raw secret (such as a gitleaks
// report) and need to match it against passman's findings.
func ContentFingerprint(rule, file string, value []byte) string {
	v := sha256.Sum256(value)
	h := sha256.New()
	h.Write([]byte(rule + "\x00" + file + "\x00"))
	h.Write(v[:])
	return hex.EncodeToString(h.Sum(nil))
}

// lineStarts returns the byte offset of each line's first byte.
func lineStarts(b []byte) []int {
	starts := []int{0}
	for i, c := range b {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}
