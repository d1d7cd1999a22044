package scanner

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/owenrumney/go-sarif/v2/sarif"
	"github.com/sethvargo/go-githubactions"

	"github.com/passman-dev/passman/internal/report"
)

// writeSARIF writes findings as SARIF 2.1.0 for code scanning: a rule per
// rule id, a result per finding at its region, and the finding's content
// fingerprint as partialFingerprints, so GitHub deduplicates a finding
// across pushes even when lines shift.
func writeSARIF(w io.Writer, findings []Finding) error {
	rep, err := sarif.New(sarif.Version210)
	if err != nil {
		return fmt.Errorf("sarif report: %w", err)
	}
	run := sarif.NewRunWithInformationURI("passman scan", "https://github.com/passman-dev/passman")
	for _, f := range findings {
		rule := run.AddRule(f.RuleID)
		if rule.ShortDescription == nil {
			rule.WithDescription(f.Description)
		}
		uri, base := report.SARIFURI(f.File)
		loc := sarif.NewArtifactLocation().WithUri(uri)
		if base != "" {
			loc.WithUriBaseId(base)
		}
		region := sarif.NewRegion().WithStartLine(f.StartLine).WithStartColumn(f.Column).
			WithEndLine(f.EndLine).WithEndColumn(f.EndCol + 1)
		phys := sarif.NewPhysicalLocation().WithArtifactLocation(loc).WithRegion(region)
		res := run.CreateResultForRule(f.RuleID).
			WithLevel("error").
			WithMessage(sarif.NewTextMessage(message(f))).
			WithPartialFingerPrints(map[string]any{"passman/content/v1": f.Fingerprint})
		res.AddLocation(sarif.NewLocationWithPhysicalLocation(phys))
		if m := f.Managed; m != nil {
			res.Properties = sarif.Properties{"managed_path": m.Path, "managed_version": m.Version}
		}
	}
	rep.AddRun(run)
	if err := rep.PrettyWrite(w); err != nil {
		return fmt.Errorf("sarif report: %w", err)
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// writeGitHub writes a workflow error annotation per finding and a summary
// line. GitHub shows at most ten annotations per level per step, so inside
// a step (GITHUB_STEP_SUMMARY set, read through opts' getenv) the full
// WriteSummary table is also appended to the step summary; outside one it
// is skipped.
func writeGitHub(w io.Writer, findings []Finding, stats Stats, opts ...githubactions.Option) error {
	ew := &report.ErrWriter{W: w}
	gh := githubactions.New(append([]githubactions.Option{githubactions.WithWriter(ew)}, opts...)...)
	for _, f := range findings {
		gh.WithFieldsMap(map[string]string{
			"file":      filepath.ToSlash(f.File),
			"line":      strconv.Itoa(f.StartLine),
			"col":       strconv.Itoa(f.Column),
			"endLine":   strconv.Itoa(f.EndLine),
			"endColumn": strconv.Itoa(f.EndCol),
			"title":     f.RuleID,
		}).Errorf("%s", message(f))
	}
	if ew.Err == nil {
		_, ew.Err = fmt.Fprintf(ew.W, "%d %s in %d %s\n", len(findings), plural(len(findings), "finding"), stats.Files, plural(int(stats.Files), "file"))
	}
	if ew.Err != nil {
		return ew.Err
	}
	return addStepSummary(gh, findings, stats)
}

// addStepSummary appends the Markdown summary to $GITHUB_STEP_SUMMARY.
// go-githubactions panics when the file cannot be written, and would try to
// open "" when the variable is unset, so the variable is checked first and
// the library's panic (an error value) is turned back into an error.
func addStepSummary(gh *githubactions.Action, findings []Finding, stats Stats) (err error) {
	if gh.Getenv("GITHUB_STEP_SUMMARY") == "" {
		return nil
	}
	var md strings.Builder
	if err := WriteSummary(&md, findings, stats); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			perr, ok := r.(error)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("github step summary: %w", perr)
		}
	}()
	gh.AddStepSummary(md.String())
	return nil
}

// message describes a finding without its secret.
func message(f Finding) string {
	msg := f.Description
	if m := f.Managed; m != nil {
		msg = fmt.Sprintf("%s: passman-managed secret %s v%d leaked", f.Description, m.Path, m.Version)
		if f.Commit != "" {
			msg += " in commit " + shortSHA(f.Commit)
		}
	}
	if len(f.Response) > 0 {
		msg += "; " + strings.Join(f.Response, "; ")
	}
	return msg
}
