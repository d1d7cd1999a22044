package action

import (
	"errors"
	"fmt"
	"github.com/passman-dev/passman/internal/regalexec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/passman-dev/passman/manifest"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/policy/regotool"
)

// annotator emits annotations of one level, at most maxAnnotations, then
// says how many were left out.
type annotator struct {
	r      *run
	level  string
	n      int
	prefix string
}

func (a *annotator) add(file string, line int, title, msg string) {
	a.n++
	if a.n > maxAnnotations {
		return
	}
	fields := map[string]string{"title": title}
	if file != "" {
		fields["file"] = filepath.ToSlash(filepath.Join(a.prefix, file))
	}
	if line > 0 {
		fields["line"] = strconv.Itoa(line)
	}
	g := a.r.gh.WithFieldsMap(fields)
	if a.level == "error" {
		g.Errorf("%s", msg)
	} else {
		g.Warningf("%s", msg)
	}
}

func (a *annotator) done() {
	if n := a.n - maxAnnotations; n > 0 {
		a.r.gh.Noticef("%d more %s annotations are not shown (GitHub shows %d per level): see the step summary", n, a.level, maxAnnotations)
	}
}

// runPolicy runs `policy test` (with coverage) and `policy lint` on the
// policies directory and, with a manifest, `lint` and (with a server)
// `plan`: annotations at file:line, a step summary, the plan in the pull
// request's comment. It fails on a failed test, a lint error, coverage
// under coverage-min, or a deny.
func runPolicy(r *run) (int, error) {
	dir := r.workDir()
	polDir := r.relInput("policies", dir)
	if polDir == "" {
		polDir = filepath.Join(dir, "policy")
	}
	coverageMin := 0.0
	if s := r.input("coverage-min"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || v > 100 {
			return ExitError, fmt.Errorf("input coverage-min %q: want a percentage between 0 and 100", s)
		}
		coverageMin = v
	}
	ev, err := readEvent(r.getenv("GITHUB_EVENT_NAME"), r.getenv("GITHUB_EVENT_PATH"))
	if err != nil {
		return ExitError, err
	}
	rel := func(p string) string {
		if x, err := filepath.Rel(dir, p); err == nil {
			return filepath.ToSlash(x)
		}
		return p
	}
	errs := &annotator{r: r, level: "error", prefix: r.input("path")}
	warns := &annotator{r: r, level: "warning", prefix: r.input("path")}
	var md strings.Builder
	md.WriteString("## passman policy\n\n")
	failed := 0

	rep, err := regotool.Test(r.ctx, polDir, regotool.TestOptions{Bundled: policy.BundledModules()})
	if err != nil {
		return ExitError, fmt.Errorf("policy test: %w", err)
	}
	fmt.Fprintf(&md, "**policy test**: %d passed, %d failed, %d errored, %d skipped; coverage %.1f%%", rep.Passed, rep.Failed, rep.Errored, rep.Skipped, rep.Coverage)
	if coverageMin > 0 {
		fmt.Fprintf(&md, " (minimum %.1f%%)", coverageMin)
	}
	md.WriteString("\n\n")
	for _, t := range rep.Results {
		if t.Fail || t.Error {
			failed++
			errs.add(rel(t.File), t.Line, "policy test: "+t.Name, strings.TrimSpace(t.Package+"."+t.Name+" failed: "+t.Message))
			fmt.Fprintf(&md, "- ❌ `%s` %s:%d\n", markdownText(t.Package+"."+t.Name), markdownText(rel(t.File)), t.Line)
		}
	}
	if rep.Coverage < coverageMin {
		failed++
		errs.add("", 0, "policy coverage", fmt.Sprintf("coverage %.1f%% is below coverage-min %.1f%%", rep.Coverage, coverageMin))
	}

	// Regal runs in a program of its own, beside passman (as for the CLI's
	// policy lint): linking it would cost every passman command its start-up.
	prog, err := regalexec.Find()
	if err != nil {
		return ExitError, fmt.Errorf("policy lint: %w", err)
	}
	lint, err := regalexec.Lint(r.ctx, prog, polDir)
	if err != nil {
		return ExitError, fmt.Errorf("policy lint: %w", err)
	}
	fmt.Fprintf(&md, "\n**policy lint**: %d errors, %d warnings in %d files\n\n", lint.Errors(), lint.Warnings(), lint.Files)
	for _, v := range lint.Violations {
		msg := v.Message
		if v.Docs != "" {
			msg += " (" + v.Docs + ")"
		}
		a := warns
		if v.Severity == regotool.SeverityError {
			a = errs
			failed++
		}
		a.add(rel(v.File), v.Line, "policy lint: "+v.Rule, msg)
		fmt.Fprintf(&md, "- %s `%s` %s:%d %s\n", v.Severity, markdownText(v.Rule), markdownText(rel(v.File)), v.Line, markdownText(v.Message))
	}

	mfile := r.relInput("manifest", dir)
	explicit := mfile != ""
	if !explicit {
		mfile = filepath.Join(dir, "passman.yaml")
	}
	var plan string
	if explicit || fileExists(mfile) {
		m, err := manifest.Load(mfile)
		if err != nil {
			return ExitError, err
		}
		eng, err := policy.New(r.ctx, policy.Options{Dir: polDir})
		if err != nil {
			return ExitError, fmt.Errorf("load policies: %w", err)
		}
		lrep, err := manifest.Lint(r.ctx, eng, m)
		if err != nil {
			return ExitError, fmt.Errorf("lint: %w", err)
		}
		fmt.Fprintf(&md, "\n**lint** (%s): %d deny, %d warn, %d excepted\n\n", markdownText(rel(mfile)), len(lrep.Deny), len(lrep.Warn), len(lrep.Excepted))
		for _, f := range lrep.Deny {
			failed++
			errs.add(rel(mfile), 0, "lint: "+f.Rule, f.Path+": "+f.Msg)
			fmt.Fprintf(&md, "- deny `%s` %s: %s\n", markdownText(f.Rule), markdownText(f.Path), markdownText(f.Msg))
		}
		for _, f := range lrep.Warn {
			warns.add(rel(mfile), 0, "lint: "+f.Rule, f.Path+": "+f.Msg)
			fmt.Fprintf(&md, "- warn `%s` %s: %s\n", markdownText(f.Rule), markdownText(f.Path), markdownText(f.Msg))
		}
		if r.input("server") != "" {
			c, err := r.login(ev)
			if err != nil {
				if !errors.Is(err, errNoIDToken) {
					return ExitError, err
				}
				r.gh.Warningf("plan skipped: %s", oneLine(err))
			} else {
				defer r.release(c)
				p, err := manifest.MakePlan(r.ctx, c, m)
				if err != nil {
					return ExitError, fmt.Errorf("plan: %w", err)
				}
				var b strings.Builder
				if err := manifest.WritePlan(&b, "text", p); err != nil {
					return ExitError, err
				}
				plan = b.String()
			}
		}
	}
	if plan != "" {
		md.WriteString("\n**plan**\n\n" + codeBlock(plan))
	}
	errs.done()
	warns.done()
	if err := r.summary(md.String()); err != nil {
		return ExitError, err
	}
	cm, err := r.newCommenter(ev)
	if err != nil {
		return ExitError, err
	}
	if err := r.comment(cm, "policy", md.String()); err != nil {
		return ExitError, err
	}
	if err := r.setOutput("failures", strconv.Itoa(failed)); err != nil {
		return ExitError, err
	}
	if failed > 0 {
		r.gh.Errorf("passman policy: %d failures", failed)
		return ExitFailed, nil
	}
	return ExitOK, nil
}

// codeBlock fences text so that nothing in it (a secret's description
// from the manifest) can end the block: the fence is longer than any run
// of backticks inside.
func codeBlock(s string) string {
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	return fence + "text\n" + strings.TrimRight(s, "\n") + "\n" + fence + "\n"
}
