package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/passman-dev/passman/secret"
)

// Stored modules are the policy modules a store holds (secret.PolicyModule):
// compiled with the bundled modules and a policy directory's, so that every
// process opening the store, every server of a cluster included, decides
// with them. They add rules to packages as a directory's modules do; none
// replaces a bundled module, whatever its package: the bundled base (the
// store creator's access, the lint rules) stays, and a stored module that
// contradicts it (a second default allow) does not compile.
//
// A module named <name> is compiled as the file store:<name>.rego, the name
// compiler errors and test results give. One named *_test is a unit test:
// run with the set's other tests whenever the set changes, never evaluated.

// StoredModuleFile is the file name a stored module has in compiler errors,
// traces and test results.
func StoredModuleFile(name string) string { return "store:" + name + ".rego" }

// storedSources splits the store's modules into evaluated ones and tests.
func storedSources(mods []secret.PolicyModule) (eval, tests []source) {
	for _, m := range mods {
		s := source{name: StoredModuleFile(m.Name), key: "store/" + m.Name + ".rego", text: m.Source}
		if m.IsTest() {
			tests = append(tests, s)
		} else {
			eval = append(eval, s)
		}
	}
	slices.SortFunc(eval, func(a, b source) int { return strings.Compare(a.name, b.name) })
	return eval, tests
}

// Candidate is a policy set compiled with a given list of stored modules,
// not yet deciding anything: Test runs its tests, Engine.Install makes it
// the engine's set.
type Candidate struct {
	set   *policySet
	user  []source // the policy directory's modules
	tests []source // the stored test modules
}

// Prepare compiles the bundled modules, the engine's policy directory and
// mods (the store's whole set, as of its policy generation gen) strictly,
// in Rego v1, as the engine would decide with them. An error wraps
// ErrInvalidPolicy and names file:line:col of each problem. The engine is
// not changed.
func (e *Engine) Prepare(ctx context.Context, gen uint64, mods []secret.PolicyModule) (c *Candidate, err error) {
	defer func() {
		if p := recover(); p != nil {
			// OPA's parser and compiler have panicked on hostile input;
			// a stored module is an administrator's, but this process
			// serves everyone.
			c, err = nil, fmt.Errorf("%w: internal error in the Rego compiler: %v", ErrInvalidPolicy, p)
		}
	}()
	eval, tests := storedSources(mods)
	set, user, err := compileSet(ctx, e.dir, e.config, eval)
	if err != nil {
		return nil, err
	}
	set.generation = gen
	return &Candidate{set: set, user: user, tests: tests}, nil
}

// Generation is the store's policy generation the candidate was built from.
func (c *Candidate) Generation() uint64 { return c.set.generation }

// storedTestTimeout bounds one test rule of a set's tests, as `opa test`
// does by default.
const storedTestTimeout = 5 * time.Second

// Test runs the unit tests of the candidate's set: the bundled tests and
// the stored *_test modules, over the bundled modules (with the default
// config, as `passman policy test` runs them), the policy directory's and
// the stored ones. Test modules are compiled strictly too. A failing or
// erroring test fails it with an error wrapping ErrInvalidPolicy that
// names each such test and where it is.
func (c *Candidate) Test(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: internal error in the Rego test runner: %v", ErrInvalidPolicy, p)
		}
	}()
	srcs := BundledModules()
	tfs, err := fs.Glob(Bundled(), "*_test.rego")
	if err != nil {
		return fmt.Errorf("read bundled tests: %w", err)
	}
	for _, f := range tfs {
		b, err := fs.ReadFile(Bundled(), f)
		if err != nil {
			return fmt.Errorf("read bundled test %s: %w", f, err)
		}
		srcs[path.Join(strings.TrimSuffix(bundledPrefix, "/"), f)] = string(b)
	}
	for _, s := range slices.Concat(c.user, c.set.stored, c.tests) {
		if _, dup := srcs[s.name]; dup {
			return fmt.Errorf("%w: two policy modules are named %s", ErrInvalidPolicy, s.name)
		}
		srcs[s.name] = s.text
	}
	modules := make(map[string]*ast.Module, len(srcs))
	var parseErrs ast.Errors
	for _, name := range slices.Sorted(maps.Keys(srcs)) {
		m, err := ast.ParseModuleWithOpts(name, srcs[name], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			var errs ast.Errors
			if !errors.As(err, &errs) {
				return fmt.Errorf("%w: parse %s: %w", ErrInvalidPolicy, name, err)
			}
			parseErrs = append(parseErrs, errs...)
			continue
		}
		modules[name] = m
	}
	if len(parseErrs) > 0 {
		return policyError(parseErrs)
	}
	compiler := ast.NewCompiler().
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1).
		WithCapabilities(Capabilities())
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetDefaultRegoVersion(ast.RegoV1).
		SetModules(modules).
		SetTimeout(storedTestTimeout).
		RaiseBuiltinErrors(true)
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		var errs ast.Errors
		if errors.As(err, &errs) {
			return policyError(errs)
		}
		return fmt.Errorf("run policy tests: %w", err)
	}
	var failed []string
	for r := range ch {
		if !r.Fail && r.Error == nil {
			continue
		}
		line := r.Package + "." + r.Name
		if r.Location != nil {
			line = fmt.Sprintf("%s:%d: %s", r.Location.File, r.Location.Row, line)
		}
		if r.Error != nil {
			line += ": error: " + r.Error.Error()
		} else {
			line += ": failed"
		}
		failed = append(failed, line)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("run policy tests: %w", err)
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w: policy test %s", ErrInvalidPolicy, failed[0])
	}
	slices.Sort(failed)
	return fmt.Errorf("%w: %d policy tests failed:\n%s", ErrInvalidPolicy, len(failed), strings.Join(failed, "\n"))
}

// Install makes c the engine's set, unless the engine already holds a
// later generation of the store's modules (another caller installed a
// newer set meanwhile): it reports whether it did.
func (e *Engine) Install(c *Candidate) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur := e.set.Load(); cur.generation > c.set.generation && cur.broken == "" {
		return false
	}
	e.set.Store(c.set)
	return true
}

// InstallBroken makes the engine decide with the bundled modules alone,
// for generation gen of a store whose modules do not compile (cause): not
// the policy directory, not any stored module. A stored deny rule must not
// silently vanish while the rest of the set stays, so everyone but the
// store's creator (the bundled policy's one admin, who can repair the set)
// is refused, and each refusal says why.
func (e *Engine) InstallBroken(ctx context.Context, gen uint64, cause error) error {
	set, err := compileSources(ctx, e.config, nil)
	if err != nil {
		return err
	}
	set.generation = gen
	set.broken = fmt.Sprintf("the store's policy modules do not compile, so only the store's creator may act until an administrator fixes them: %v", cause)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.set.Store(set)
	return nil
}

// Generation is the store's policy generation the engine's set holds (0
// when it holds no stored modules).
func (e *Engine) Generation() uint64 { return e.set.Load().generation }

// Broken says why the engine decides with the bundled base alone ("" when
// it does not).
func (e *Engine) Broken() string { return e.set.Load().broken }
