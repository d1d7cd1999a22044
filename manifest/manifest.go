// Package manifest reads passman.yaml, the secrets-as-code manifest that
// declares which secrets a store should hold, who owns them and how their
// values come about, and plans and applies it against a passman.Service.
//
// A manifest never carries secret values: generated secrets get theirs from
// package generator, static ones are put out of band. A value: field is
// decoded only so that policy lint can flag it; its text is dropped while
// decoding and plan and apply refuse the manifest.
package manifest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"github.com/passman-dev/passman/generator"
	"github.com/passman-dev/passman/secret"
)

// Limits on a manifest file.
const (
	// MaxFileSize bounds a manifest: 4 MiB holds some 19,000 secrets
	// written out in block style.
	MaxFileSize = 4 << 20
	// MaxElements bounds the YAML elements, estimated from the bytes that
	// can start one (see estimateElements), before parsing: yaml.v3 holds
	// about 170 bytes per node, and a hostile 4 MiB list ("1,1,1,…") would
	// make 2 million of them (measured: 336 MB live, 1.1 GB allocated,
	// 2.2 s). A real 4 MiB manifest estimates at 0.5 to 0.9 million.
	MaxElements = 1 << 20
	// MaxDepth bounds nesting, rotation config included. yaml.v3 allows
	// 10,000 levels; nothing in a manifest needs more than a handful.
	MaxDepth = 32
	// maxErrors stops reporting after this many problems, like a compiler.
	maxErrors = 20
)

// Manifest is a decoded passman.yaml.
type Manifest struct {
	// Secrets are the declared secrets in file order.
	Secrets []Secret
	// Policies is the policy directory, relative to the manifest ("" if
	// not set).
	Policies string
	// File is the manifest's name as given to Parse, used in messages.
	File string
}

// Secret is one declared secret. Exactly one of Generate, Static and
// HasValue is set in a manifest that Parse accepted.
type Secret struct {
	Path        string
	Owner       string
	Description string
	Tags        map[string]string
	// Generate is the normalised generator spec (defaults filled in).
	Generate *generator.Spec
	// Static means the value is supplied out of band (passman secret put).
	Static bool
	// HasValue records that the manifest held a value: field. The value
	// itself is dropped right after decoding.
	HasValue bool
	Rotation *Rotation
	// Line and Column locate the list item in the manifest (1-based).
	Line, Column int
}

// Rotation is a secret's rotation schedule: a period and, to rotate on a
// target system, the connection (defined by an administrator) and its
// per-secret params. The store checks that the secret may use the
// connection.
type Rotation struct {
	Period     secret.Duration
	Connection string
	Params     map[string]any
}

// Parse decodes and validates a manifest. name is used in messages
// ("passman.yaml:12:5: …"). Problems are returned as Errors, each wrapping
// secret.ErrInvalidArgument; an oversized input wraps secret.ErrTooLarge.
func Parse(name string, data []byte) (*Manifest, error) {
	if len(data) > MaxFileSize {
		return nil, tooLarge(name, int64(len(data)))
	}
	if n := estimateElements(data); n > MaxElements {
		return nil, fmt.Errorf("%w: manifest %s has about %d YAML elements, at most %d allowed; split it", secret.ErrTooLarge, name, n, MaxElements)
	}
	if e := scanBytes(name, data); e != nil {
		return nil, Errors{e}
	}
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	d := &decoder{collector{file: name}}
	m := d.manifest(root)
	if err := d.err(); err != nil {
		return nil, err
	}
	m.File = name
	return m, nil
}

// Load reads and parses the manifest at path. It refuses a file larger
// than MaxFileSize before reading it whole.
func Load(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open manifest: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open manifest: %w", err)
	}
	if fi.Size() > MaxFileSize {
		return nil, tooLarge(path, fi.Size())
	}
	// The size can change between Stat and read (or lie: a FIFO or
	// /proc file reports 0), so the read is bounded too.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(path, int64(len(data)))
	}
	return Parse(path, data)
}

// estimateElements over-estimates the number of YAML nodes in data: each
// node but the first follows a line break or one of , [ { - : ?.
func estimateElements(data []byte) int {
	n := 1
	for _, c := range data {
		switch c {
		case '\n', ',', '[', '{', '-', ':', '?':
			n++
		}
	}
	return n
}

func tooLarge(name string, n int64) error {
	return fmt.Errorf("%w: manifest %s is %d bytes, at most %d (4 MiB) allowed; split it", secret.ErrTooLarge, name, n, MaxFileSize)
}

// Validate checks a manifest built or changed in code against the rules
// Parse enforces. Problems are reported at their secret's position. A
// value: field is allowed here (lint reports it); plan and apply refuse it.
func (m *Manifest) Validate() error {
	c := &collector{file: m.File}
	if msg := checkPolicies(m.Policies); msg != "" {
		c.add(1, 1, "policies: "+msg)
	}
	if len(m.Secrets) == 0 {
		c.add(1, 1, msgNoSecrets)
	}
	seen := make(map[string]int, len(m.Secrets))
	for i := range m.Secrets {
		s := &m.Secrets[i]
		at := func(msg string) { c.add(s.Line, s.Column, msg) }
		if err := secret.ValidatePath(s.Path); err != nil {
			at(err.Error())
		} else if first, dup := seen[s.Path]; dup {
			at(fmt.Sprintf("duplicate secret path %s (first declared at line %d)", s.Path, first))
		} else {
			seen[s.Path] = s.Line
		}
		for _, msg := range s.check() {
			at(msg)
		}
	}
	return c.err()
}

// check returns what is wrong with s apart from its path.
func (s *Secret) check() []string {
	var out []string
	add := func(field, msg string) {
		if msg != "" {
			out = append(out, field+": "+msg)
		}
	}
	add("owner", checkText(s.Owner, secret.MaxOwnerLen, false))
	add("description", checkText(s.Description, secret.MaxDescriptionLen, true))
	if len(s.Tags) > secret.MaxTags {
		add("tags", fmt.Sprintf("%d tags, at most %d allowed", len(s.Tags), secret.MaxTags))
	}
	for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
		v := s.Tags[k]
		if msg := checkTagKey(k); msg != "" {
			add("tags", msg)
		} else {
			add("tags."+k, checkTagValue(v))
		}
	}
	switch n := btoi(s.Generate != nil) + btoi(s.Static) + btoi(s.HasValue); {
	case n == 0:
		out = append(out, msgDeclare)
	case n > 1:
		out = append(out, msgOnlyOne)
	}
	if s.Generate != nil {
		if _, err := s.Generate.Normalize(); err != nil {
			add("generate", trimSentinel(err))
		}
	}
	if r := s.Rotation; r != nil {
		if r.Period <= 0 {
			add("rotation.period", "must be a positive duration such as 720h or 30d")
		}
		if r.Connection != "" {
			add("rotation.connection", checkConnection(r.Connection))
		} else if r.Params != nil {
			add("rotation.params", "needs a connection")
		}
	}
	return out
}

// checkApplicable is what plan and apply demand beyond Validate: no
// values in the manifest. The error names the path and line, never the
// value, which was not even kept.
func (m *Manifest) checkApplicable() error {
	if m == nil {
		return fmt.Errorf("%w: no manifest", secret.ErrInvalidArgument)
	}
	if err := m.Validate(); err != nil {
		return err
	}
	c := &collector{file: m.File}
	for _, s := range m.Secrets {
		if s.HasValue {
			c.add(s.Line, s.Column, fmt.Sprintf("secret %s has a value: field; values never belong in a manifest: remove it, declare static: true and supply the value with 'passman secret put'", s.Path))
		}
	}
	return c.err()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// trimSentinel drops the "invalid argument: " prefix that a wrapped
// sentinel puts on a message which a manifest Error already classifies.
func trimSentinel(err error) string {
	msg := err.Error()
	for _, s := range []error{secret.ErrInvalidArgument, secret.ErrInvalidPath} {
		if errors.Is(err, s) && len(msg) > len(s.Error())+2 && msg[:len(s.Error())] == s.Error() {
			return msg[len(s.Error())+2:]
		}
	}
	return msg
}
