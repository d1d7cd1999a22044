package policy

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/passman-dev/passman/generator"
	"github.com/passman-dev/passman/secret"
)

// Lint checks secrets against the lint policy (package passman.lint).
// Findings an exception matches move from Deny or Warn to Excepted. An
// invalid input (unknown source, empty path, unparsable rotation period)
// returns an error wrapping secret.ErrInvalidArgument.
func (e *Engine) Lint(ctx context.Context, in LintInput) (LintReport, error) {
	return e.set.Load().lint(ctx, in)
}

func (set *policySet) lint(ctx context.Context, in LintInput, opts ...rego.EvalOption) (LintReport, error) {
	in, err := in.normalize()
	if err != nil {
		return LintReport{}, err
	}
	b, err := eval(ctx, set.lintQ, DecisionLint, in, opts...)
	if err != nil {
		return LintReport{}, err
	}
	deny, err := findings(b, "deny")
	if err != nil {
		return LintReport{}, err
	}
	warn, err := findings(b, "warn")
	if err != nil {
		return LintReport{}, err
	}
	excs, err := exceptions(b)
	if err != nil {
		return LintReport{}, err
	}
	r := LintReport{Deny: []LintFinding{}, Warn: []LintFinding{}, Excepted: []LintFinding{}, Revision: set.revision}
	for _, f := range deny {
		if excs.match(f) {
			r.Excepted = append(r.Excepted, f)
		} else {
			r.Deny = append(r.Deny, f)
		}
	}
	for _, f := range warn {
		if excs.match(f) {
			r.Excepted = append(r.Excepted, f)
		} else {
			r.Warn = append(r.Warn, f)
		}
	}
	for _, s := range [][]LintFinding{r.Deny, r.Warn, r.Excepted} {
		slices.SortFunc(s, compareFindings)
	}
	// A finding can be both a deny and a warn; once both are excepted they
	// would show twice.
	r.Excepted = slices.Compact(r.Excepted)
	return r, nil
}

func compareFindings(a, b LintFinding) int {
	return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Msg, b.Msg))
}

// findings reads data.passman.lint.deny or .warn.
func findings(b rego.Vars, name string) ([]LintFinding, error) {
	objs, err := objectSet(b, DecisionLint, name)
	if err != nil {
		return nil, err
	}
	out := make([]LintFinding, 0, len(objs))
	for _, o := range objs {
		var f LintFinding
		if f.Rule, err = field(o, "rule", true); err != nil {
			return nil, fmt.Errorf("lint %s finding: %w", name, err)
		}
		if f.Msg, err = field(o, "msg", true); err != nil {
			return nil, fmt.Errorf("lint %s finding: %w", name, err)
		}
		if f.Path, err = field(o, "path", false); err != nil {
			return nil, fmt.Errorf("lint %s finding: %w", name, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// exceptionSet maps a rule to the paths its exceptions cover; an empty
// path means every path.
type exceptionSet map[string]map[string]bool

func (x exceptionSet) match(f LintFinding) bool {
	paths := x[f.Rule]
	return paths[""] || (f.Path != "" && paths[f.Path])
}

// exceptions reads data.passman.lint.exception.
func exceptions(b rego.Vars) (exceptionSet, error) {
	objs, err := objectSet(b, DecisionLint, "exception")
	if err != nil {
		return nil, err
	}
	x := exceptionSet{}
	for _, o := range objs {
		rule, err := field(o, "rule", true)
		if err != nil {
			return nil, fmt.Errorf("lint exception: %w", err)
		}
		path, err := field(o, "path", false)
		if err != nil {
			return nil, fmt.Errorf("lint exception: %w", err)
		}
		if x[rule] == nil {
			x[rule] = map[string]bool{}
		}
		x[rule][path] = true
	}
	return x, nil
}

// normalize validates the input and returns a copy in canonical form:
// rotation periods as Go duration text, generate blocks with the
// generator's defaults filled in. The caller's input is not modified.
func (in LintInput) normalize() (LintInput, error) {
	if in.Source != SourceManifest && in.Source != SourceStore {
		return in, fmt.Errorf("%w: lint source %q (want %s or %s)", secret.ErrInvalidArgument, in.Source, SourceManifest, SourceStore)
	}
	out := LintInput{Source: in.Source, Secrets: make([]LintSecret, len(in.Secrets))}
	for i, s := range in.Secrets {
		where := fmt.Sprintf("secret %d", i+1)
		if s.Line > 0 {
			where = fmt.Sprintf("line %d", s.Line)
		}
		if s.Path == "" {
			return in, fmt.Errorf("%w: %s: secret has no path", secret.ErrInvalidArgument, where)
		}
		if s.Rotation != nil && s.Rotation.Period != "" {
			d, err := secret.ParseDuration(s.Rotation.Period)
			if err != nil {
				return in, fmt.Errorf("%s %s: rotation period: %w", where, s.Path, err)
			}
			r := *s.Rotation
			r.Period = canonicalDuration(d)
			s.Rotation = &r
		}
		if s.Generate != nil {
			s.Generate = generateDefaults(*s.Generate)
		}
		out.Secrets[i] = s
	}
	return out, nil
}

// generateDefaults fills what generator.Spec.Normalize would for an empty
// length or class list: policy judges the value that will be generated, not
// the spelling of the block. Validation stays with the manifest loader.
func generateDefaults(g LintGenerate) *LintGenerate {
	out := LintGenerate{Length: g.Length, Classes: slices.Clone(g.Classes)}
	def, err := generator.Spec{}.Normalize()
	if err != nil {
		// The zero spec always normalises; keep the block as written if not.
		def = generator.Spec{}
	}
	if out.Length == 0 {
		out.Length = def.Length
	}
	if len(out.Classes) == 0 {
		out.Classes = make([]string, len(def.Classes))
		for i, c := range def.Classes {
			out.Classes[i] = string(c)
		}
	}
	return &out
}
