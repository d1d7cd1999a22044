package action

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/passman-dev/passman/scanner"
)

// maxAnnotations is how many annotations of one level GitHub shows for a
// step (ten errors, ten warnings, ten notices; the rest are dropped
// silently), so the action chooses which ten.
const maxAnnotations = 10

// annotationOrder ranks findings by what a reviewer must see first: a
// managed secret (one of the organisation's own live credentials) before
// a rule match; a specific rule before gitleaks' generic-api-key, its
// most frequent false positive; then the most recent commit (the last
// thing the author touched); then file and line, for a stable order.
func annotationOrder(a, b scanner.Finding) int {
	rank := func(f scanner.Finding) int {
		switch {
		case f.Managed != nil:
			return 0
		case f.RuleID == "generic-api-key":
			return 2
		}
		return 1
	}
	return cmp.Or(
		cmp.Compare(rank(a), rank(b)),
		-cmp.Compare(a.Date, b.Date),
		cmp.Compare(a.File, b.File),
		cmp.Compare(a.StartLine, b.StartLine),
		cmp.Compare(a.RuleID, b.RuleID),
	)
}

// annotate writes the chosen annotations: findings that fail the step
// as errors, the others (known from the baseline, or fail-on: none) as
// warnings, each level its best maxAnnotations; a notice says how many
// more there are and where to find them. prefix is the checkout's path
// in the workspace, which annotation paths are relative to.
func (r *run) annotate(failing, other []scanner.Finding, prefix string) {
	emit := func(fs []scanner.Finding, level string) {
		fs = slices.Clone(fs)
		slices.SortStableFunc(fs, annotationOrder)
		for _, f := range fs[:min(len(fs), maxAnnotations)] {
			fields := map[string]string{"file": path.Join(prefix, f.File), "title": "passman: " + f.RuleID}
			if f.StartLine > 0 {
				fields["line"] = strconv.Itoa(f.StartLine)
				fields["endLine"] = strconv.Itoa(max(f.EndLine, f.StartLine))
				// Column and EndCol are the true columns; StartColumn is
				// gitleaks' number, one more on a fragment's later lines.
				if f.StartLine == f.EndLine && f.Column > 0 {
					fields["col"] = strconv.Itoa(f.Column)
					fields["endColumn"] = strconv.Itoa(f.EndCol)
				}
			}
			a := r.gh.WithFieldsMap(fields)
			if level == "error" {
				a.Errorf("%s", findingMessage(f))
			} else {
				a.Warningf("%s", findingMessage(f))
			}
		}
		if n := len(fs) - maxAnnotations; n > 0 {
			r.gh.Noticef("%d more %s findings are not annotated (GitHub shows %d per level): see the step summary, the SARIF report or the JSON report", n, level, maxAnnotations)
		}
	}
	emit(failing, "error")
	emit(other, "warning")
}

// findingMessage describes a finding without its secret: the rule, the
// managed secret it is, the commit, and what the response did.
func findingMessage(f scanner.Finding) string {
	var b strings.Builder
	b.WriteString(f.Description)
	if m := f.Managed; m != nil {
		fmt.Fprintf(&b, ": passman-managed secret %s v%d", m.Path, m.Version)
	}
	if f.Commit != "" {
		fmt.Fprintf(&b, " (commit %s)", short(f.Commit))
	}
	for _, resp := range f.Response {
		b.WriteString("; " + resp)
	}
	return b.String()
}
