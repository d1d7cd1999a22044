package regotool

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/owenrumney/go-sarif/v2/sarif"
	"github.com/sethvargo/go-githubactions"

	"github.com/passman-dev/passman/internal/report"
)

// sarifInformationURI is the tool's home in SARIF output.
const sarifInformationURI = "https://github.com/passman-dev/passman"

// ruleDescription describes a rule Lint names itself; Regal's rules carry
// their own description in the violation message.
func ruleDescription(rule string) string {
	switch rule {
	case "rego_parse_error":
		return "Rego syntax error"
	case "rego_compile_error":
		return "Rego compile error (strict mode)"
	case "rego_unsafe_var_error":
		return "Unsafe variable"
	case "rego_type_error":
		return "Rego type error"
	case "rego_recursion_error":
		return "Recursive rule or function"
	case RuleFormat:
		return "File should be formatted with opa fmt"
	case RuleFileTooLarge:
		return "Policy file too large to check"
	case RuleReadError:
		return "Policy file could not be read"
	case RuleInternalError:
		return "A check failed on the file"
	}
	return rule
}

// writeLintSARIF writes r as SARIF 2.1.0: one run, a rule per distinct rule
// id (in order of first appearance), a result per violation. A relative file
// is a URI relative to %SRCROOT%, which code-scanning uploads resolve against
// the repository root; an absolute one is a file:// URI.
func writeLintSARIF(w io.Writer, r SourceReport) error {
	rep, err := sarif.New(sarif.Version210)
	if err != nil {
		return fmt.Errorf("sarif report: %w", err)
	}
	run := sarif.NewRunWithInformationURI("passman policy lint", sarifInformationURI)
	for _, v := range r.Violations {
		rule := run.AddRule(v.Rule)
		if rule.ShortDescription == nil {
			desc := ruleDescription(v.Rule)
			if v.Source == SourceRegal && v.Rule != RuleInternalError {
				desc = v.Message
			}
			rule.WithDescription(desc)
			if v.Docs != "" {
				rule.WithHelpURI(v.Docs)
			}
			pb := sarif.NewPropertyBag()
			pb.Add("category", v.Category)
			pb.Add("source", v.Source)
			rule.WithProperties(pb.Properties)
		}
		uri, base := report.SARIFURI(v.File)
		loc := sarif.NewArtifactLocation().WithUri(uri)
		if base != "" {
			loc.WithUriBaseId(base)
		}
		phys := sarif.NewPhysicalLocation().WithArtifactLocation(loc)
		if v.Line > 0 {
			region := sarif.NewRegion().WithStartLine(v.Line)
			if v.Column > 0 {
				region.WithStartColumn(v.Column)
			}
			phys.WithRegion(region)
		}
		run.CreateResultForRule(v.Rule).
			WithLevel(v.Severity).
			WithMessage(sarif.NewTextMessage(v.Message)).
			AddLocation(sarif.NewLocationWithPhysicalLocation(phys))
	}
	rep.AddRun(run)
	if err := rep.PrettyWrite(w); err != nil {
		return fmt.Errorf("sarif report: %w", err)
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// writeLintGitHub writes a workflow command per violation, then the summary
// as a plain line. go-githubactions does the commands' escaping, as GitHub's
// toolkit does it.
func writeLintGitHub(w io.Writer, r SourceReport) error {
	ew := &report.ErrWriter{W: w}
	gh := githubactions.New(githubactions.WithWriter(ew))
	for _, v := range r.Violations {
		fields := map[string]string{"file": filepath.ToSlash(v.File), "title": v.Rule}
		if v.Line > 0 {
			fields["line"] = strconv.Itoa(v.Line)
			if v.Column > 0 {
				fields["col"] = strconv.Itoa(v.Column)
			}
		}
		msg := v.Message
		if v.Docs != "" {
			msg += " (" + v.Docs + ")"
		}
		a := gh.WithFieldsMap(fields)
		if v.Severity == SeverityError {
			a.Errorf("%s", msg)
		} else {
			a.Warningf("%s", msg)
		}
	}
	ew.Printf("%s\n", lintSummary(r))
	return ew.Err
}
