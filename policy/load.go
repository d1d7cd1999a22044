package policy

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/passman-dev/passman/secret"
)

//go:embed bundled/*.rego bundled/config.json
var bundledFS embed.FS

// bundledPrefix names bundled modules in errors, traces and the revision.
// User modules are named by their path on disk, which in a sane policy
// directory never starts with it; load checks anyway.
const bundledPrefix = "bundled/"

// Bundled returns the bundled policy files: the evaluated modules, their
// *_test.rego unit tests and config.json, the defaults of data.passman.config.
// `passman policy test` and `policy fmt` run over them like user files.
func Bundled() fs.FS {
	sub, err := fs.Sub(bundledFS, "bundled")
	if err != nil {
		// fs.Sub fails only for an invalid path; "bundled" is valid.
		return bundledFS
	}
	return sub
}

// BundledModules returns the bundled modules that evaluation compiles, name
// -> Rego source, for `passman policy test` to compile beside the user's
// files. Unit tests are left out. Because a test run has no data document,
// it also holds "bundled/config.rego", package passman.config, whose rules
// are the defaults of config.json: bundled lint rules then see the same
// thresholds in a test as in a default engine, and a test can override one
// with `with data.passman.config.max_rotation_period as "720h"`.
func BundledModules() map[string]string {
	out := map[string]string{}
	srcs, err := bundledSources()
	if err != nil {
		// The embedded files are part of the binary; reading them cannot fail.
		return out
	}
	for _, s := range srcs {
		out[s.name] = s.text
	}
	if cfg, err := DefaultConfig(); err == nil {
		out[bundledPrefix+"config.rego"] = configModule(cfg)
	}
	return out
}

// configModule renders a config as package passman.config; a JSON value is
// also a Rego term.
func configModule(cfg map[string]any) string {
	var b strings.Builder
	b.WriteString("# Generated from policy/bundled/config.json.\npackage passman.config\n")
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		v, err := json.Marshal(cfg[k])
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n%s := %s\n", k, v)
	}
	return b.String()
}

// source is one module's file name and text.
type source struct {
	name string // module id: file path for user modules, bundled/<file> otherwise
	key  string // name in the revision: stable across checkouts
	text string
}

// isTest reports whether a file is a Rego unit test, which evaluation ignores.
func isTest(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// bundledSources returns the bundled modules, tests excluded.
func bundledSources() ([]source, error) {
	entries, err := fs.ReadDir(bundledFS, "bundled")
	if err != nil {
		return nil, fmt.Errorf("read bundled policies: %w", err)
	}
	var out []source
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".rego") || isTest(e.Name()) {
			continue
		}
		b, err := bundledFS.ReadFile(path.Join("bundled", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read bundled policy %s: %w", e.Name(), err)
		}
		name := bundledPrefix + e.Name()
		out = append(out, source{name: name, key: name, text: string(b)})
	}
	return out, nil
}

// userSources reads every *.rego file under dir, recursively, skipping unit
// tests and hidden directories (.git).
func userSources(dir string) ([]source, error) {
	if dir == "" {
		return nil, nil
	}
	var out []source
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".rego") || isTest(d.Name()) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(filepath.ToSlash(p), bundledPrefix) {
			return fmt.Errorf("%w: %s: a policy directory must not be named %q", secret.ErrInvalidArgument, p, strings.TrimSuffix(bundledPrefix, "/"))
		}
		out = append(out, source{name: p, key: "user/" + filepath.ToSlash(rel), text: string(b)})
		return nil
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: policy directory %s: %w", secret.ErrInvalidArgument, dir, err)
		}
		return nil, fmt.Errorf("read policy directory %s: %w", dir, err)
	}
	return out, nil
}

// knownConfig types the configuration keys the bundled policies read, so a
// wrong type fails New instead of making a rule silently never fire.
type knownConfig struct {
	ProductionPrefixes  []string            `json:"production_prefixes"`
	MaxRotationPeriod   string              `json:"max_rotation_period"`
	MinGeneratedLength  int                 `json:"min_generated_length"`
	MinGeneratedClasses int                 `json:"min_generated_classes"`
	RequiredTags        map[string][]string `json:"required_tags"`
}

// DefaultConfig returns a fresh copy of the bundled defaults of
// data.passman.config.
func DefaultConfig() (map[string]any, error) {
	b, err := bundledFS.ReadFile("bundled/config.json")
	if err != nil {
		return nil, fmt.Errorf("read bundled config: %w", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("parse bundled config: %w", err)
	}
	return cfg, nil
}

// effectiveConfig merges user over the defaults, key by key (a user key
// replaces the default value whole, so required_tags: {} turns that rule
// off), checks the known keys' types and canonicalises durations.
func effectiveConfig(user map[string]any) (map[string]any, error) {
	cfg, err := DefaultConfig()
	if err != nil {
		return nil, err
	}
	maps.Copy(cfg, user)
	// Round-trip through JSON: the store and the type check below want
	// plain JSON values, whatever Go types the caller used.
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: policy config: %w", secret.ErrInvalidArgument, err)
	}
	var known knownConfig
	if err := json.Unmarshal(b, &known); err != nil {
		return nil, fmt.Errorf("%w: policy config: %w", secret.ErrInvalidArgument, err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: policy config: %w", secret.ErrInvalidArgument, err)
	}
	d, err := secret.ParseDuration(known.MaxRotationPeriod)
	if err != nil || d == 0 {
		return nil, fmt.Errorf("%w: policy config max_rotation_period %q: want a positive duration such as \"2160h\" or \"90d\"", secret.ErrInvalidArgument, known.MaxRotationPeriod)
	}
	// Rego's time.parse_duration_ns knows no day suffix.
	out["max_rotation_period"] = canonicalDuration(d)
	for _, k := range []string{"production_prefixes", "required_tags"} {
		if out[k] == nil {
			return nil, fmt.Errorf("%w: policy config %s must not be null", secret.ErrInvalidArgument, k)
		}
	}
	return out, nil
}

// canonicalDuration renders d the way the bundled default is written:
// "2160h" rather than "2160h0m0s" when it is a whole number of hours.
func canonicalDuration(d secret.Duration) string {
	td := time.Duration(d)
	if td%time.Hour == 0 {
		return fmt.Sprintf("%dh", td/time.Hour)
	}
	return td.String()
}

// revision hashes the modules (sorted by revision key) and the effective
// config. Names and texts are length-prefixed so no two sets collide by
// moving bytes between fields.
func revision(srcs []source, cfg map[string]any) (string, error) {
	sorted := slices.Clone(srcs)
	slices.SortFunc(sorted, func(a, b source) int { return strings.Compare(a.key, b.key) })
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	for _, s := range sorted {
		field(s.key)
		field(s.text)
	}
	// encoding/json sorts map keys, so equal configs hash equally.
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(cfg); err != nil {
		return "", fmt.Errorf("encode policy config: %w", err)
	}
	field("config")
	field(buf.String())
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
