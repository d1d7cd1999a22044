package action

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/passman-dev/passman/internal/scanrun"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scanner"
)

// failOn values: which findings fail the step.
var failOnValues = []string{"any", "new", "none"}

// runScan scans what the event brings (see resolveTarget) and reports:
// annotations, step summary, SARIF and JSON reports, the pull request's
// comment, and the outputs findings, new-findings, sarif, report and
// rotated.
func runScan(r *run) (int, error) {
	failOn := r.input("fail-on")
	if failOn == "" {
		failOn = "any"
	}
	if !contains(failOnValues, failOn) {
		return ExitError, fmt.Errorf("input fail-on %q: want %s", failOn, strings.Join(failOnValues, ", "))
	}
	rules := r.input("rules")
	if rules != "" && !contains(scanner.RuleSets, rules) {
		return ExitError, fmt.Errorf("input rules %q: want %s", rules, strings.Join(scanner.RuleSets, ", "))
	}
	managed, err := r.boolInput("managed", false)
	if err != nil {
		return ExitError, err
	}
	respond, err := r.boolInput("respond", false)
	if err != nil {
		return ExitError, err
	}
	if respond && !managed {
		return ExitError, errors.New("input respond: true needs managed: true (the response acts on the store that recognised the leak)")
	}
	fetch, err := r.boolInput("fetch-history", true)
	if err != nil {
		return ExitError, err
	}
	ev, err := readEvent(r.getenv("GITHUB_EVENT_NAME"), r.getenv("GITHUB_EVENT_PATH"))
	if err != nil {
		return ExitError, err
	}
	dir := r.workDir()
	g := &repo{dir: dir, fetch: fetch, remote: "origin", log: func(s string) { r.gh.Infof("%s", s) }}
	tgt, err := g.resolveTarget(r.ctx, ev)
	if err != nil {
		return ExitError, err
	}
	r.gh.Infof("passman scan: %s", tgt.Why)

	opts := scanner.Options{ConfigPath: r.relInput("config", dir), Rules: rules}
	if opts.ConfigPath == "" {
		// As gitleaks does: the repository's own .gitleaks.toml.
		if p := filepath.Join(dir, ".gitleaks.toml"); fileExists(p) {
			opts.ConfigPath = p
		}
	}
	filters, err := scanrun.LoadFilters(r.relInput("baseline", dir), r.relInput("gitleaks-ignore", dir), dir)
	if err != nil {
		return ExitError, err
	}
	if tgt.Range != "" {
		r.warnRulesChanged(g, tgt.Range)
	}
	var responder rotation.FindingResponder
	if managed {
		c, err := r.login(ev)
		switch {
		case errors.Is(err, errNoIDToken) && ev.Fork:
			// A fork's pull request still gets its scan, by the rules.
			r.gh.Warningf("managed secrets not recognised: %s", oneLine(err))
			respond = false
		case err != nil:
			return ExitError, err
		default:
			defer r.release(c)
			var withheld int
			if opts, withheld, err = scanrun.ManagedOptions(r.ctx, c, r.input("managed-prefix"), opts); err != nil {
				return ExitError, err
			}
			if withheld > 0 {
				r.gh.Noticef("%d managed values are too weak to export and are not searched for", withheld)
			}
			responder = c
		}
	}
	s, err := scanner.New(opts)
	if err != nil {
		return ExitError, err
	}
	var (
		findings []scanner.Finding
		stats    scanner.Stats
	)
	if !tgt.Nothing {
		gopts := scanner.GitOptions{Range: tgt.Range}
		if c := r.openCache(); c != nil {
			defer c.Close()
			gopts.Cache = c
		}
		if findings, stats, err = s.ScanGit(r.ctx, dir, gopts); err != nil {
			return ExitError, fmt.Errorf("scan: %w", err)
		}
	}
	fresh, known := filters.Apply(findings)
	var respondErr error
	rotated := false
	if respond {
		results, err := rotation.RespondToFindings(r.ctx, responder, fresh)
		respondErr = err
		for _, res := range results {
			if res.Rotation != nil || res.Revoked {
				rotated = true
			}
		}
	}
	all := append(append([]scanner.Finding(nil), fresh...), known...)

	failing, other := fresh, known
	switch failOn {
	case "any":
		failing, other = all, nil
	case "none":
		failing, other = nil, all
	}
	if stats.Shallow {
		r.gh.Warningf("shallow checkout: commits before its boundary were not scanned; check out with fetch-depth: 0")
	}
	r.annotate(failing, other, r.input("path"))

	reports, err := r.tempDir("passman-scan-")
	if err != nil {
		return ExitError, err
	}
	sarifPath, jsonPath := filepath.Join(reports, "passman.sarif"), filepath.Join(reports, "passman.json")
	if err := writeReport(sarifPath, "sarif", all, stats); err != nil {
		return ExitError, err
	}
	if err := writeReport(jsonPath, "json", all, stats); err != nil {
		return ExitError, err
	}
	md, err := scanMarkdown(tgt, fresh, known, stats, failOn)
	if err != nil {
		return ExitError, err
	}
	if err := r.summary(md); err != nil {
		return ExitError, err
	}
	cm, err := r.newCommenter(ev)
	if err != nil {
		return ExitError, err
	}
	if err := r.comment(cm, "scan", md); err != nil {
		return ExitError, err
	}
	for k, v := range map[string]string{
		"findings": strconv.Itoa(len(all)), "new-findings": strconv.Itoa(len(fresh)),
		"sarif": sarifPath, "report": jsonPath, "rotated": strconv.FormatBool(rotated),
	} {
		if err := r.setOutput(k, v); err != nil {
			return ExitError, err
		}
	}
	r.gh.Infof("passman scan: %d findings (%d new, %d known) in %d commits; reports: %s, %s", len(all), len(fresh), len(known), stats.Commits, sarifPath, jsonPath)
	if respondErr != nil {
		return ExitError, respondErr
	}
	if len(failing) > 0 {
		r.gh.Errorf("passman scan: %d leaks found (fail-on: %s)", len(failing), failOn)
		return ExitFailed, nil
	}
	return ExitOK, nil
}

// scanMarkdown is the step summary and the comment: what was scanned,
// the findings table (scanner.WriteSummary, every cell escaped), and the
// responses.
func scanMarkdown(tgt target, fresh, known []scanner.Finding, stats scanner.Stats, failOn string) (string, error) {
	var b strings.Builder
	all := append(append([]scanner.Finding(nil), fresh...), known...)
	if err := scanner.WriteSummary(&b, all, stats); err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "\nScanned: %s; %d commits", markdownText(tgt.Why), stats.Commits)
	if stats.CachedCommits > 0 {
		fmt.Fprintf(&b, " (%d from the cache)", stats.CachedCommits)
	}
	fmt.Fprintf(&b, ". New: %d, known from the baseline: %d; fail-on: %s.\n", len(fresh), len(known), failOn)
	var responses []string
	for _, f := range all {
		if f.Managed != nil && len(f.Response) > 0 {
			responses = append(responses, fmt.Sprintf("- `%s` v%d: %s", markdownText(f.Managed.Path), f.Managed.Version, markdownText(strings.Join(f.Response, "; "))))
		}
	}
	if len(responses) > 0 {
		b.WriteString("\n### Response\n\n" + strings.Join(dedupe(responses), "\n") + "\n")
	}
	return b.String(), nil
}

// markdownText keeps text the action writes from forming Markdown or HTML.
func markdownText(s string) string {
	r := strings.NewReplacer("<", "&lt;", ">", "&gt;", "`", "'", "\n", " ", "\r", " ", "|", "\\|", "[", "\\[", "]", "\\]")
	return r.Replace(s)
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func writeReport(path, format string, findings []scanner.Finding, stats scanner.Stats) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("%s report: %w", format, err)
	}
	werr := scanner.Write(f, format, findings, stats, nil)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("%s report: %w", format, err)
	}
	return nil
}

// openCache opens the scan cache (input cache-file, default the user
// cache directory, which actions/cache can keep between runs); a busy or
// unusable cache means scanning without one.
func (r *run) openCache() *scanner.Cache {
	p := r.input("cache-file")
	if p == "none" {
		return nil
	}
	if p == "" {
		var err error
		if p, err = scanner.DefaultCachePath(); err != nil {
			return nil
		}
	}
	c, err := scanner.OpenCache(p)
	if err != nil {
		if !errors.Is(err, scanner.ErrCacheBusy) {
			r.gh.Warningf("scan cache %s not used: %s", p, oneLine(err))
		}
		return nil
	}
	return c
}

// warnRulesChanged warns when the scanned range changes the files that
// decide what is reported: on a pull request the checkout is the pull
// request's, so it can relax its own rules or ignore its own leak.
func (r *run) warnRulesChanged(g *repo, rng string) {
	// Three dots: what the change itself does, from the merge base.
	out, err := g.git(r.ctx, "diff", "--name-only", strings.Replace(rng, "..", "...", 1), "--", ".gitleaks.toml", ".gitleaksignore")
	if err != nil || out == "" {
		return
	}
	r.gh.Warningf("this change edits %s, which decide what the scan reports: review them", strings.ReplaceAll(out, "\n", ", "))
}

// relInput reads a path input relative to the checkout.
func (r *run) relInput(name, dir string) string {
	p := r.input(name)
	if p == "" || isAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}
