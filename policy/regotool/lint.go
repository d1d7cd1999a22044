package regotool

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/passman-dev/passman/policy"
)

// Violation sources: which check found a problem.
const (
	// SourceCompile is a read, parse or strict-mode compile error.
	SourceCompile = "compile"
	// SourceFormat is a file that differs from OPA's formatting.
	SourceFormat = "format"
	// SourceRegal is a finding of one of Regal's linter rules.
	SourceRegal = "regal"
)

// Severities of a violation.
const (
	// SeverityError is a problem that should fail a CI check.
	SeverityError = "error"
	// SeverityWarning is a problem worth a look that need not fail a check.
	SeverityWarning = "warning"
)

// Rule names for violations that no parser, compiler or Regal rule names.
const (
	// RuleFileTooLarge is a file over MaxFileSize, which is not read.
	RuleFileTooLarge = "file-too-large"
	// RuleReadError is a file that could not be read.
	RuleReadError = "read-error"
	// RuleFormat is a file that `passman policy fmt` would change.
	RuleFormat = "opa-fmt"
	// RuleInternalError is a check that failed or panicked on the file.
	RuleInternalError = "internal-error"
)

// Violation is one problem Lint found.
type Violation struct {
	// Source is the check that found it: SourceCompile, SourceFormat or
	// SourceRegal.
	Source string
	// Rule names the problem: an OPA error code ("rego_unsafe_var_error"),
	// RuleFormat, or a Regal rule ("prefer-snake-case").
	Rule string
	// Category groups rules: "compile", "style", or Regal's category.
	Category string
	// Severity is SeverityError or SeverityWarning.
	Severity string
	// File is always set. Line and Column are 1-based; 0 means the
	// violation is about the whole file.
	File         string
	Line, Column int
	// Message says what is wrong.
	Message string
	// Docs is a URL documenting the rule, if Regal gives one.
	Docs string
}

// SourceReport is the result of a lint.
type SourceReport struct {
	// Violations are sorted by file, line, column and rule.
	Violations []Violation
	// Files is the number of .rego files checked.
	Files int
}

// Errors returns the number of violations of severity error.
func (r SourceReport) Errors() int {
	n := 0
	for _, v := range r.Violations {
		if v.Severity == SeverityError {
			n++
		}
	}
	return n
}

// Warnings returns the number of violations of severity warning.
func (r SourceReport) Warnings() int {
	return len(r.Violations) - r.Errors()
}

// Pass is a lint pass run after the compile and format passes on the files
// that parse, keyed by file name. Its findings are violations; its error
// fails the lint. Regal's rules are one (package regotool/regal), kept out
// of this package because merely linking Regal costs every program that
// does ~50 ms of start-up (it parses its embedded bundle in a package
// variable).
type Pass func(ctx context.Context, modules map[string]*ast.Module, contents map[string]string) ([]Violation, error)

// LintWith checks every .rego file under dir, in up to three passes:
//
//   - compile: each file is parsed as Rego v1, and if all parse, they are
//     compiled together in strict mode (unused imports and variables, unsafe
//     variables, type errors). A file that does not parse (or is too large to
//     read) stops the compile pass, whose errors would otherwise be noise
//     about what the missing file defines.
//   - format: each file that parses is compared with format.Source's output.
//   - extra: when newPass is not nil, the Pass it returns. It is called once
//     the files are found and before any is parsed, so a bad configuration
//     of the pass fails the lint first.
//
// Problems in the files are violations, never errors; LintWith fails only
// when dir cannot be used (secret.ErrNotFound, secret.ErrInvalidArgument),
// newPass or the pass fails, or ctx ends. regal.Lint is LintWith with
// Regal's rules as the extra pass.
func LintWith(ctx context.Context, dir string, newPass func() (Pass, error)) (SourceReport, error) {
	files, err := findRegoFiles(dir)
	if err != nil {
		return SourceReport{}, err
	}
	var extra Pass
	if newPass != nil {
		if extra, err = newPass(); err != nil {
			return SourceReport{}, err
		}
	}

	var vs []Violation
	modules := make(map[string]*ast.Module, len(files))
	contents := make(map[string]string, len(files))
	complete := true // every file parsed, so the compile pass sees them all
	for _, f := range files {
		switch {
		case f.tooBig:
			complete = false
			vs = append(vs, fileViolation(f.name, RuleFileTooLarge,
				fmt.Sprintf("file is larger than %d bytes and was not checked; split the policy", MaxFileSize)))
			continue
		case f.readErr != nil:
			complete = false
			vs = append(vs, fileViolation(f.name, RuleReadError, f.readErr.Error()))
			continue
		}
		m, err := parseModule(f.name, string(f.src))
		if err != nil {
			complete = false
			vs = append(vs, astViolations(f.name, asASTErrors(f.name, err))...)
			continue
		}
		modules[f.name] = m
		contents[f.name] = string(f.src)
		vs = append(vs, formatViolations(f.name, f.src)...)
	}
	if complete && len(modules) > 0 {
		vs = append(vs, compileStrict(modules, files[0].name)...)
	}
	if extra != nil && len(modules) > 0 {
		rv, err := extra(ctx, modules, contents)
		if err != nil {
			return SourceReport{}, err
		}
		vs = append(vs, rv...)
	}
	sortViolations(vs)
	return SourceReport{Violations: vs, Files: len(files)}, nil
}

// compileStrict compiles modules together in strict mode and returns the
// errors as violations; errors without a file are put on fallback.
func compileStrict(modules map[string]*ast.Module, fallback string) (vs []Violation) {
	defer func() {
		if p := recover(); p != nil {
			vs = []Violation{fileViolation(fallback, RuleInternalError, fmt.Sprintf("the Rego compiler failed: %v", p))}
		}
	}()
	c := ast.NewCompiler().
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1).
		WithCapabilities(policy.Capabilities()).
		WithEnablePrintStatements(true).
		SetErrorLimit(0)
	c.Compile(modules)
	return astViolations(fallback, c.Errors)
}

// formatViolations reports a file that format.Source would change, at the
// first line that differs. A file the formatter rejects although it parsed
// (a construct it cannot lay out) is reported too, as a format error.
func formatViolations(name string, src []byte) []Violation {
	out, err := formatSource(name, src)
	if err != nil {
		v := fileViolation(name, RuleFormat, "the formatter rejected the file: "+err.Error())
		v.Source, v.Category = SourceFormat, "style"
		return []Violation{v}
	}
	if bytes.Equal(out, src) {
		return nil
	}
	return []Violation{{
		Source:   SourceFormat,
		Rule:     RuleFormat,
		Category: "style",
		Severity: SeverityError,
		File:     name,
		Line:     firstDiffLine(src, out),
		Column:   1,
		Message:  "file is not formatted as `opa fmt` would; run `passman policy fmt`",
	}}
}

// firstDiffLine returns the 1-based line at which a and b first differ.
func firstDiffLine(a, b []byte) int {
	line := 1
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return line
		}
		if a[i] == '\n' {
			line++
		}
	}
	return line
}

// astViolations turns parser or compiler errors into violations.
func astViolations(fallback string, errs ast.Errors) []Violation {
	vs := make([]Violation, 0, len(errs))
	for _, e := range errs {
		v := Violation{
			Source:   SourceCompile,
			Rule:     e.Code,
			Category: "compile",
			Severity: SeverityError,
			File:     fallback,
			Message:  e.Message,
		}
		if e.Location != nil {
			if e.Location.File != "" {
				v.File = e.Location.File
			}
			v.Line, v.Column = e.Location.Row, e.Location.Col
		}
		vs = append(vs, v)
	}
	return vs
}

// fileViolation is an error-level compile violation about a whole file.
func fileViolation(name, rule, msg string) Violation {
	return Violation{
		Source:   SourceCompile,
		Rule:     rule,
		Category: "compile",
		Severity: SeverityError,
		File:     name,
		Message:  msg,
	}
}

func sortViolations(vs []Violation) {
	slices.SortStableFunc(vs, func(a, b Violation) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Source, b.Source),
			cmp.Compare(a.Message, b.Message),
		)
	})
}
