package regotool

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// DefaultTestTimeout bounds one test when TestOptions.Timeout is zero; it is
// `opa test`'s default.
const DefaultTestTimeout = 5 * time.Second

// TestOptions configures Test.
type TestOptions struct {
	// Timeout bounds each test; 0 means DefaultTestTimeout.
	Timeout time.Duration
	// Bundled holds extra modules, name -> Rego source, compiled into the run
	// beside the directory's files: passman's embedded policies, so that
	// user tests can exercise them. It may be nil. A name must not clash
	// with a file found under the directory. Bundled modules do not count
	// in TestReport.Coverage.
	Bundled map[string]string
	// StrictBuiltinErrors makes a built-in function error (division by zero,
	// a bad argument to to_number) fail the test as ERROR instead of making
	// the expression undefined. Set it to match how the policy engine
	// evaluates, so tests see the errors production would.
	StrictBuiltinErrors bool
}

// TestResult is the outcome of one test rule. Exactly one of Pass, Fail,
// Error and Skip is true.
type TestResult struct {
	// Package is the test's package path ("data.authz_test"), Name its rule
	// name ("test_allow").
	Package, Name string
	// File and Line locate the rule.
	File string
	Line int
	// Pass, Fail, Error and Skip are the outcome: Fail means the rule was
	// undefined or not true, Error that evaluation failed (a conflict, a
	// timeout, a strict built-in error), Skip a todo_test_ rule.
	Pass, Fail, Error, Skip bool
	// Duration is the evaluation time.
	Duration time.Duration
	// Message is the failure or error detail: the error, the failing sub-cases
	// of a parameterised test, and anything the test printed.
	Message string
}

// TestReport is the result of Test.
type TestReport struct {
	// Results are sorted by file, line and name.
	Results []TestResult
	// Coverage is the percentage, 0 to 100, of the lines of the directory's
	// policy (non-test) files that the tests evaluated; 0 when there are no
	// such lines. Bundled modules are left out, so that the figure, and a
	// minimum a CI job sets on it, measures the user's policies and does not
	// move with the size of passman's embedded ones.
	Coverage float64
	// Passed, Failed, Errored and Skipped count Results by outcome.
	Passed, Failed, Errored, Skipped int
}

// Test runs the Rego unit tests found under dir, as `opa test --coverage`
// does: every rule whose name starts with test_ (todo_test_ rules are
// skipped). A file that does not parse or a compile error fails the whole run
// with an error wrapping secret.ErrInvalidArgument that names file:line.
func Test(ctx context.Context, dir string, opts TestOptions) (TestReport, error) {
	files, err := findRegoFiles(dir)
	if err != nil {
		return TestReport{}, err
	}
	if err := checkReadable(files); err != nil {
		return TestReport{}, err
	}
	modules, err := parseForTest(files, opts.Bundled)
	if err != nil {
		return TestReport{}, err
	}

	cov := cover.New()
	// The engine's built-ins: a test must not reach the network, and a
	// policy that passes here must compile in the engine.
	compiler := ast.NewCompiler().
		WithCapabilities(policy.Capabilities()).
		WithEnablePrintStatements(true).
		WithDefaultRegoVersion(ast.RegoV1)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetDefaultRegoVersion(ast.RegoV1).
		SetModules(modules).
		SetTimeout(cmp.Or(opts.Timeout, DefaultTestTimeout)).
		CapturePrintOutput(true).
		RaiseBuiltinErrors(opts.StrictBuiltinErrors).
		SetCoverageQueryTracer(cov).
		// Only the percentage is reported, so skip the supplementary passes
		// that classify uncovered lines: each would evaluate every test again.
		SetCoverageRuns(nil)

	ch, err := runTests(ctx, runner)
	if err != nil {
		var astErrs ast.Errors
		if errors.As(err, &astErrs) {
			return TestReport{}, newError(secret.ErrInvalidArgument, err, "compile policies in %s: %s", dir, describeASTErrors(astErrs))
		}
		return TestReport{}, fmt.Errorf("run tests in %s: %w", dir, err)
	}
	var rep TestReport
	for r := range ch {
		rep.add(r)
	}
	if err := ctx.Err(); err != nil {
		return TestReport{}, fmt.Errorf("run tests in %s: %w", dir, err)
	}
	slices.SortFunc(rep.Results, func(a, b TestResult) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Name, b.Name))
	})
	own := make(map[string]bool, len(files))
	for _, f := range files {
		own[f.name] = !isTestFile(f.name)
	}
	rep.Coverage = policyCoverage(cov.Report(modules), own)
	return rep, nil
}

// runTests starts the runner, turning a panic in OPA (compiling hostile
// input) into an error.
func runTests(ctx context.Context, runner *tester.Runner) (ch chan *tester.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in the Rego test runner: %v", p)
		}
	}()
	return runner.RunTests(ctx, nil)
}

// parseForTest parses the directory's files and the bundled modules.
func parseForTest(files []regoFile, bundled map[string]string) (map[string]*ast.Module, error) {
	modules := make(map[string]*ast.Module, len(files)+len(bundled))
	var errs ast.Errors
	add := func(name, src string) {
		m, err := parseModule(name, src)
		if err != nil {
			errs = append(errs, asASTErrors(name, err)...)
			return
		}
		modules[name] = m
	}
	for _, f := range files {
		add(f.name, string(f.src))
	}
	for _, name := range sortedKeys(bundled) {
		if _, clash := modules[name]; clash {
			return nil, newError(secret.ErrInvalidArgument, nil, "bundled module %s has the name of a file in the policy directory", name)
		}
		add(name, bundled[name])
	}
	if len(errs) > 0 {
		return nil, newError(secret.ErrInvalidArgument, errs, "parse policies: %s", describeASTErrors(errs))
	}
	return modules, nil
}

// add records one runner result.
func (rep *TestReport) add(r *tester.Result) {
	res := TestResult{Package: r.Package, Name: r.Name, Duration: r.Duration}
	if r.Location != nil {
		res.File, res.Line = r.Location.File, r.Location.Row
	}
	var msg []string
	switch {
	case r.Skip:
		res.Skip = true
		rep.Skipped++
	case r.Error != nil:
		res.Error = true
		rep.Errored++
		msg = append(msg, r.Error.Error())
	case r.Fail:
		res.Fail = true
		rep.Failed++
		for name, sr := range r.SubResults.Iter {
			if sr.Fail && len(sr.SubResults) == 0 {
				msg = append(msg, "case "+strings.Join(name, "/")+" failed")
			}
		}
	default:
		res.Pass = true
		rep.Passed++
	}
	if out := strings.TrimSpace(string(r.Output)); out != "" && !res.Pass {
		msg = append(msg, out)
	}
	res.Message = strings.Join(msg, "\n")
	rep.Results = append(rep.Results, res)
}

// policyCoverage is the share of the lines of the files counted[name] that is
// covered; the cover package's own total counts every file, tests included.
func policyCoverage(r cover.Report, counted map[string]bool) float64 {
	var covered, notCovered int
	for name, fr := range r.Files {
		if !counted[name] {
			continue
		}
		covered += fr.CoveredLines
		notCovered += fr.NotCoveredLines
	}
	if covered+notCovered == 0 {
		return 0
	}
	return 100 * float64(covered) / float64(covered+notCovered)
}

// parseModule parses one module as Rego v1, with annotations, turning a
// parser panic into an error.
func parseModule(name, src string) (m *ast.Module, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("internal error in the Rego parser: %v", p)
		}
	}()
	return ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
}

// asASTErrors returns err's ast.Errors, or err as one error located at name.
func asASTErrors(name string, err error) ast.Errors {
	var errs ast.Errors
	if errors.As(err, &errs) {
		return errs
	}
	return ast.Errors{ast.NewError(ast.ParseErr, &ast.Location{File: name}, "%s", err.Error())}
}

// describeASTErrors renders errors as "file:line: code: message" joined by
// "; ", the first few only.
func describeASTErrors(errs ast.Errors) string {
	const shown = 5
	parts := make([]string, 0, min(len(errs), shown)+1)
	for i, e := range errs {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(errs)-shown))
			break
		}
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
