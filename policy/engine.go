package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/passman-dev/passman/secret"
)

// ErrInvalidPolicy marks a policy set that does not compile, or a policy
// whose result breaks its decision's contract (a deny that is not a string,
// an unknown respond action). It wraps secret.ErrInvalidArgument, so the CLI
// reports it as a configuration error.
var ErrInvalidPolicy error = invalidPolicyError{}

type invalidPolicyError struct{}

func (invalidPolicyError) Error() string { return "invalid policy" }
func (invalidPolicyError) Unwrap() error { return secret.ErrInvalidArgument }

// Options configure an Engine.
type Options struct {
	// Dir is the user policy directory: every *.rego file below it, except
	// *_test.rego unit tests and hidden directories, is compiled together
	// with the bundled policies. "" means the bundled policies alone.
	Dir string
	// Config is merged over the bundled defaults (policy/bundled/config.json)
	// key by key and published at data.passman.config.
	Config map[string]any
}

// Engine evaluates passman's three decisions (authz, lint, respond) against
// the bundled policies plus the user's. It is safe for concurrent use;
// Reload swaps the compiled set atomically, so a decision sees either the
// old set or the new one, never a mix.
type Engine struct {
	dir    string
	config map[string]any
	mu     sync.Mutex // serialises Reload
	set    atomic.Pointer[policySet]
}

// policySet is one compiled generation: the queries prepared against it and
// the revision that names it. It is immutable once built.
type policySet struct {
	revision string
	// stored are the store's (non-test) modules compiled in, and
	// generation the store's policy generation they came from (0: none
	// loaded); see stored.go.
	stored     []source
	generation uint64
	// broken, when set, says why this is the bundled base alone standing
	// in for a stored set that does not compile (Engine.InstallBroken).
	broken string
	// cache memoises authz decisions; nil when a rule depends on time (see
	// decisionCache).
	cache    *decisionCache
	authzQ   rego.PreparedEvalQuery
	lintQ    rego.PreparedEvalQuery
	respondQ rego.PreparedEvalQuery
}

// The queries, one per decision. Set comprehensions make a rule that no
// module defines read as the empty set instead of making the query undefined.
const (
	authzQuery = `allow := data.passman.authz.allow
deny := {m | some m in data.passman.authz.deny}
reasons := {m | some m in data.passman.authz.reasons}`
	lintQuery = `deny := {f | some f in data.passman.lint.deny}
warn := {f | some f in data.passman.lint.warn}
exception := {x | some x in data.passman.lint.exception}`
	respondQuery = `actions := {a | some a in data.passman.respond.actions}`
)

// Capabilities are the Rego built-ins passman policies may use: OPA's,
// minus those that reach the network or the runtime, since a decision
// depends on its input, the policy files and the config alone (the
// revision names all three). The policy tools lint and test with the same
// set, so what passes there compiles here.
func Capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(refusedBuiltins(), b.Name)
	})
	return caps
}

// refusedBuiltins are the built-ins capabilities leaves out.
func refusedBuiltins() []string { return []string{"http.send", "net.lookup_ip_addr", "opa.runtime"} }

// New compiles the bundled and user policies once, in Rego v1 and strict
// mode, and prepares the three decision queries. A policy that does not
// compile fails New with an error wrapping ErrInvalidPolicy that names
// file:line:col of each problem.
func New(ctx context.Context, opts Options) (*Engine, error) {
	cfg, err := effectiveConfig(opts.Config)
	if err != nil {
		return nil, err
	}
	set, _, err := compileSet(ctx, opts.Dir, cfg, nil)
	if err != nil {
		return nil, err
	}
	e := &Engine{dir: opts.Dir, config: cfg}
	e.set.Store(set)
	return e, nil
}

// Reload recompiles the policies from Options.Dir, with the stored
// modules the engine holds. On any error the engine keeps deciding with
// the set it had, and the error names file:line:col.
func (e *Engine) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.set.Load()
	if old.broken != "" {
		// The base alone stands in for a stored set that does not
		// compile: the directory is not part of it (see InstallBroken).
		return fmt.Errorf("reload policies: %w: %s", ErrInvalidPolicy, old.broken)
	}
	set, _, err := compileSet(ctx, e.dir, e.config, old.stored)
	if err != nil {
		return fmt.Errorf("reload policies: %w", err)
	}
	set.generation = old.generation
	e.set.Store(set)
	return nil
}

// Revision names the compiled policy set: "sha256:<hex>" over the sorted
// module names and texts and the effective config. Decisions carry it, so
// an audit entry records exactly which policy allowed an operation.
func (e *Engine) Revision() string { return e.set.Load().revision }

// compileSet parses, compiles and prepares one generation: the bundled
// modules, those under dir and stored. It also returns the user
// directory's sources, for a test run of the same set.
func compileSet(ctx context.Context, dir string, cfg map[string]any, stored []source) (*policySet, []source, error) {
	user, err := userSources(dir)
	if err != nil {
		return nil, nil, err
	}
	set, err := compileSources(ctx, cfg, append(slices.Clip(user), stored...))
	if err != nil {
		return nil, nil, err
	}
	set.stored = stored
	return set, user, nil
}

// compileSources compiles the bundled modules with extra.
func compileSources(ctx context.Context, cfg map[string]any, extra []source) (*policySet, error) {
	srcs, err := bundledSources()
	if err != nil {
		return nil, err
	}
	srcs = append(srcs, extra...)

	modules := make(map[string]*ast.Module, len(srcs))
	var parseErrs ast.Errors
	for _, s := range srcs {
		if _, dup := modules[s.name]; dup {
			return nil, fmt.Errorf("%w: two policy modules are named %s", ErrInvalidPolicy, s.name)
		}
		m, err := ast.ParseModuleWithOpts(s.name, s.text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			var errs ast.Errors
			if errors.As(err, &errs) {
				parseErrs = append(parseErrs, errs...)
				continue
			}
			return nil, fmt.Errorf("%w: parse %s: %w", ErrInvalidPolicy, s.name, err)
		}
		modules[s.name] = m
	}
	if len(parseErrs) > 0 {
		return nil, policyError(parseErrs)
	}

	caps := Capabilities()
	compiler := ast.NewCompiler().
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1).
		WithCapabilities(caps)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, policyError(compiler.Errors)
	}

	store := inmem.NewFromObjectWithOpts(map[string]any{
		"passman": map[string]any{"config": cfg},
	}, inmem.OptRoundTripOnWrite(false))

	prepare := func(name, query, contract string) (rego.PreparedEvalQuery, error) {
		pq, err := rego.New(
			rego.Query(query),
			rego.Compiler(compiler),
			rego.Store(store),
			rego.SetRegoVersion(ast.RegoV1),
			rego.Strict(true),
			rego.StrictBuiltinErrors(true),
			rego.Capabilities(caps),
		).PrepareForEval(ctx)
		if err != nil {
			return pq, fmt.Errorf("prepare %s query (%s): %w", name, contract, policyError(err))
		}
		return pq, nil
	}
	set := &policySet{}
	if timeIndependent(compiler) {
		set.cache = &decisionCache{}
	}
	if set.authzQ, err = prepare(DecisionAuthz, authzQuery, "allow must be a boolean, deny and reasons sets of strings"); err != nil {
		return nil, err
	}
	if set.lintQ, err = prepare(DecisionLint, lintQuery, "deny, warn and exception must be sets of objects"); err != nil {
		return nil, err
	}
	if set.respondQ, err = prepare(DecisionRespond, respondQuery, "actions must be a set of objects"); err != nil {
		return nil, err
	}
	if set.revision, err = revision(srcs, cfg); err != nil {
		return nil, err
	}
	return set, nil
}

// policyError renders OPA's errors one per line as file:line:col: code:
// message, the form editors jump to, and wraps ErrInvalidPolicy.
func policyError(err error) error {
	var lines []string
	var collect func(error)
	collect = func(err error) {
		switch e := err.(type) {
		case ast.Errors:
			for _, x := range e {
				collect(x)
			}
		case rego.Errors:
			for _, x := range e {
				collect(x)
			}
		case *ast.Error:
			line := e.Code + ": " + e.Message
			for _, name := range refusedBuiltins() {
				if e.Message == "undefined function "+name {
					line += " (passman policies may not use network or runtime built-ins)"
				}
			}
			if e.Location != nil {
				file := e.Location.File
				if file == "" {
					file = "query" // the engine's own query, not a policy file
				}
				line = fmt.Sprintf("%s:%d:%d: %s", file, e.Location.Row, e.Location.Col, line)
			}
			if e.Details != nil {
				for _, l := range e.Details.Lines() {
					line += "\n\t" + l
				}
			}
			lines = append(lines, line)
		default:
			lines = append(lines, err.Error())
		}
	}
	collect(err)
	if len(lines) == 1 {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, lines[0])
	}
	return fmt.Errorf("%w: %d problems:\n%s", ErrInvalidPolicy, len(lines), strings.Join(lines, "\n"))
}

// eval runs a prepared query and returns its single result's bindings.
// input is a Go value that encodes to the input document as JSON, or the
// document itself as an ast.Value.
func eval(ctx context.Context, q rego.PreparedEvalQuery, name string, input any, opts ...rego.EvalOption) (rego.Vars, error) {
	// OPA allocates a metrics registry per evaluation unless given one;
	// nobody reads it here.
	opts = append(opts, rego.EvalMetrics(metrics.NoOp()))
	if v, ok := input.(ast.Value); ok {
		opts = append(opts, rego.EvalParsedInput(v))
	} else {
		opts = append(opts, rego.EvalInput(input))
	}
	rs, err := q.Eval(ctx, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("evaluate %s policy: %w", name, ctx.Err())
		}
		return nil, fmt.Errorf("evaluate %s policy: %w", name, policyError(err))
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("%w: %s query returned %d results, want 1 (is a rule in package passman.%s of the wrong kind?)", ErrInvalidPolicy, name, len(rs), name)
	}
	return rs[0].Bindings, nil
}

// stringSet reads a binding that must be a set of strings.
func stringSet(b rego.Vars, decision, name string) ([]string, error) {
	items, ok := b[name].([]any)
	if !ok {
		return nil, fmt.Errorf("%w: data.passman.%s.%s must be a set, got %T", ErrInvalidPolicy, decision, name, b[name])
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, fmt.Errorf("%w: data.passman.%s.%s must hold strings, got %T %v", ErrInvalidPolicy, decision, name, it, it)
		}
		out = append(out, s)
	}
	return out, nil
}

// objectSet reads a binding that must be a set of objects.
func objectSet(b rego.Vars, decision, name string) ([]map[string]any, error) {
	items, ok := b[name].([]any)
	if !ok {
		return nil, fmt.Errorf("%w: data.passman.%s.%s must be a set, got %T", ErrInvalidPolicy, decision, name, b[name])
	}
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: data.passman.%s.%s must hold objects, got %T %v", ErrInvalidPolicy, decision, name, it, it)
		}
		out = append(out, m)
	}
	return out, nil
}

// field reads an optional string field of a policy-built object.
func field(m map[string]any, key string, required bool) (string, error) {
	v, ok := m[key]
	if !ok {
		if required {
			return "", fmt.Errorf("%w: object %v has no %q", ErrInvalidPolicy, m, key)
		}
		return "", nil
	}
	s, ok := v.(string)
	if !ok || (required && s == "") {
		return "", fmt.Errorf("%w: object %v: %q must be a non-empty string", ErrInvalidPolicy, m, key)
	}
	return s, nil
}
