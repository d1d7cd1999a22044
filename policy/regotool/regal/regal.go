// Package regal runs Regal's linter rules as a regotool lint pass. It is a
// package of its own so that only the programs that lint link Regal: its
// rule bundle is parsed in a package variable, ~50 ms of every start-up.
// passman's CLI runs it in the passman-regal program (cmd/passman-regal).
package regal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/styrainc/regal/pkg/config"
	"github.com/styrainc/regal/pkg/linter"
	"github.com/styrainc/regal/pkg/report"
	"github.com/styrainc/regal/pkg/rules"
	"gopkg.in/yaml.v3"

	"github.com/passman-dev/passman/policy/regotool"
	"github.com/passman-dev/passman/secret"
)

// Lint is regotool.LintWith with Regal's rules as the extra pass: Regal's
// default configuration, with dir/.regal/config.yaml merged over it when
// present (see regalOff for the rules it turns off). An invalid Regal
// configuration fails the lint (secret.ErrInvalidArgument).
func Lint(ctx context.Context, dir string) (regotool.SourceReport, error) {
	return regotool.LintWith(ctx, dir, func() (regotool.Pass, error) {
		cfg, err := loadRegalConfig(dir)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, modules map[string]*ast.Module, contents map[string]string) ([]regotool.Violation, error) {
			return lintRegal(ctx, dir, cfg, modules, contents)
		}, nil
	})
}

// configError is an error a caller branches on with errors.Is (through
// kind) whose message stays readable: the sentinel is not appended.
type configError struct {
	msg   string
	kind  error
	cause error
}

func (e *configError) Error() string { return e.msg }

func (e *configError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func newError(kind, cause error, format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...), kind: kind, cause: cause}
}

// regalOff returns the Regal rules Lint always turns off. Regal v0.29 predates
// OPA 1.0 and, running on OPA v1's v0-compatibility packages, misjudges Rego
// v1 (measured on this module's versions):
//
//   - opa-fmt formats the module as Rego v0 (dropping `if` and `contains`), so
//     it fires on every correctly formatted v1 file. The format pass, using
//     OPA's v1 formatter, replaces it.
//   - use-rego-v1 asks for `import rego.v1`, which Rego v1 makes redundant; it
//     fires on every v1 file.
func regalOff() []string { return []string{"opa-fmt", "use-rego-v1"} }

// loadRegalConfig reads dir/.regal/config.yaml (where Regal's CLI looks too); nil if there is none or it is
// empty. A configuration that would make Regal fetch capabilities over the
// network (capabilities.from.url) is refused: linting must not reach out from
// a CI job because of a file in the linted tree.
func loadRegalConfig(dir string) (*config.Config, error) {
	path := filepath.Join(dir, ".regal", "config.yaml")
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read Regal config: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, regotool.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read Regal config %s: %w", path, err)
	}
	if len(src) > regotool.MaxFileSize {
		return nil, newError(secret.ErrTooLarge, nil, "Regal config %s is larger than %d bytes", path, regotool.MaxFileSize)
	}
	if len(bytes.TrimSpace(src)) == 0 {
		return nil, nil
	}
	var raw struct {
		Capabilities struct {
			From struct {
				URL string `yaml:"url"`
			} `yaml:"from"`
		} `yaml:"capabilities"`
	}
	if err := yaml.Unmarshal(src, &raw); err != nil {
		return nil, newError(secret.ErrInvalidArgument, err, "Regal config %s is not valid YAML: %v", path, err)
	}
	if raw.Capabilities.From.URL != "" {
		return nil, newError(secret.ErrInvalidArgument, nil,
			"Regal config %s loads capabilities from a URL, which passman does not fetch; use capabilities.from.file", path)
	}
	var cfg config.Config
	if err := decodeRegalConfig(src, &cfg); err != nil {
		return nil, newError(secret.ErrInvalidArgument, err, "Regal config %s: %v", path, err)
	}
	return &cfg, nil
}

// decodeRegalConfig runs Regal's YAML decoding, which can panic on odd input.
func decodeRegalConfig(src []byte, cfg *config.Config) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error decoding the config: %v", p)
		}
	}()
	return yaml.Unmarshal(src, cfg)
}

// lintRegal runs Regal's rules on the parsed modules. Regal's own failures are
// reported as violations, attributed to a file by linting the files one at a
// time; only the end of ctx is an error.
func lintRegal(ctx context.Context, dir string, cfg *config.Config, modules map[string]*ast.Module, contents map[string]string) ([]regotool.Violation, error) {
	base := linter.NewLinter().WithDisabledRules(regalOff()...)
	if cfg != nil {
		base = base.WithUserConfig(*cfg)
	}
	// Regal matches ignore patterns against names with this prefix removed,
	// and resolves a name to an absolute path (for directory-package-mismatch)
	// against the working directory: the names are dir-joined, so both work.
	if dir = filepath.Clean(dir); dir != "." {
		base = base.WithPathPrefix(dir)
	}
	rep, err := runRegal(ctx, base, modules, contents)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, fmt.Errorf("lint %s: %w", dir, ctxErr)
	}
	if err == nil {
		return regalReportViolations(rep, dir), nil
	}
	if len(modules) == 1 {
		for name := range modules {
			return []regotool.Violation{regalFailure(name, err)}, nil
		}
	}
	// Find the file Regal fails on. Cross-file (aggregate) rules cannot run
	// this way, so this is only the fallback.
	var vs []regotool.Violation
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		one := map[string]*ast.Module{name: modules[name]}
		rep, err := runRegal(ctx, base, one, map[string]string{name: contents[name]})
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("lint %s: %w", dir, ctxErr)
		}
		if err != nil {
			vs = append(vs, regalFailure(name, err))
			continue
		}
		vs = append(vs, regalReportViolations(rep, name)...)
	}
	return vs, nil
}

// regalMu serialises Regal runs in this process. Every Regal linter compiles
// the same package-level rule bundle (regal/bundle.LoadedBundle), and two
// compilations at once race on its shared AST (OPA's compiler rewrites terms
// that the other reads; `go test -race` with two parallel Lint calls shows
// it). It is the one piece of package state here, guarding upstream's.
var regalMu sync.Mutex

// runRegal lints modules, turning a panic in Regal into an error. Regal
// evaluates each file on a goroutine of its own, where a panic cannot be
// recovered; what is recovered here is the parse, config and Go-rule work it
// does on the calling goroutine.
func runRegal(ctx context.Context, l linter.Linter, modules map[string]*ast.Module, contents map[string]string) (rep report.Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	input := rules.NewInput(contents, modules)
	regalMu.Lock()
	defer regalMu.Unlock()
	return l.WithInputModules(&input).Lint(ctx)
}

// regalReportViolations converts Regal's findings; fallback names the file of
// a finding Regal gives none.
func regalReportViolations(rep report.Report, fallback string) []regotool.Violation {
	vs := make([]regotool.Violation, 0, len(rep.Violations))
	for _, rv := range rep.Violations {
		v := regotool.Violation{
			Source:   regotool.SourceRegal,
			Rule:     rv.Title,
			Category: rv.Category,
			Severity: regotool.SeverityWarning,
			File:     rv.Location.File,
			Line:     rv.Location.Row,
			Column:   rv.Location.Column,
			Message:  rv.Description,
		}
		if rv.Level == regotool.SeverityError {
			v.Severity = regotool.SeverityError
		}
		if v.File == "" {
			v.File = fallback
		}
		for _, r := range rv.RelatedResources {
			if r.Description == "documentation" {
				v.Docs = r.Reference
				break
			}
		}
		vs = append(vs, v)
	}
	return vs
}

// regalFailure reports that Regal could not lint name.
func regalFailure(name string, err error) regotool.Violation {
	return regotool.Violation{
		Source:   regotool.SourceRegal,
		Rule:     regotool.RuleInternalError,
		Category: "regal",
		Severity: regotool.SeverityError,
		File:     name,
		Message:  "Regal failed on this file: " + err.Error(),
	}
}
