package rotation

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// Leak is a managed secret version a scan found.
type Leak struct {
	Path    string
	Version int
	// Finding describes where it was found (rule, file, line, commit,
	// author, date), for the policy; never the secret.
	Finding map[string]any
	// Where names the place in messages and the rotation's trigger, such
	// as "config.py:3 in commit abc1234".
	Where string
}

// Decider evaluates the leak response policy (data.passman.respond);
// (*policy.Engine).Respond is one.
type Decider func(ctx context.Context, in policy.RespondInput) (policy.Response, error)

// LeakResult is what was done about one leak.
type LeakResult struct {
	Path     string                 `json:"path"`
	Version  int                    `json:"version"`
	Actions  []policy.RespondAction `json:"actions"`
	Rotation *Result                `json:"rotation,omitempty"`
	Revoked  bool                   `json:"revoked,omitempty"`
	// Done says in words what happened, action by action.
	Done  []string `json:"done"`
	Error string   `json:"error,omitempty"`
}

// Respond asks the policy what to do about a leak and does it: rotate the
// secret if the leaked version is still current (so two scans finding the
// same leak rotate once), revoke the leaked version once it is no longer
// current, and report notify and ignore decisions. The secret's own
// stages, read now, go to the policy: an exported index may be stale.
func (e *Runner) Respond(ctx context.Context, leak Leak, decide Decider) (LeakResult, error) {
	res := LeakResult{Path: leak.Path, Version: leak.Version}
	s, err := e.Store.Describe(ctx, leak.Path)
	if err != nil {
		return res, fmt.Errorf("respond to leak of %s: %w", leak.Path, err)
	}
	in := policy.RespondInput{Finding: leak.Finding, Secret: policy.RespondSecret{
		Path: leak.Path, Version: leak.Version, State: string(secret.StateActive), Metadata: &s.Metadata,
	}}
	found := false
	for _, v := range s.Versions {
		if v.Version == leak.Version {
			found = true
			in.Secret.State = string(v.State)
			for _, st := range v.Stages {
				in.Secret.Stages = append(in.Secret.Stages, string(st))
			}
		}
	}
	if !found {
		return res, fmt.Errorf("%w: respond to leak: %s has no version %d", secret.ErrNotFound, leak.Path, leak.Version)
	}
	resp, err := decide(ctx, in)
	if err != nil {
		return res, fmt.Errorf("respond to leak of %s v%d: policy: %w", leak.Path, leak.Version, err)
	}
	res.Actions = resp.Actions
	for _, a := range resp.Actions {
		switch a.Action {
		case policy.RespondRotate:
			if s.CurrentVersion != leak.Version {
				res.Done = append(res.Done, fmt.Sprintf("not rotated: v%d is no longer current (v%d is)", leak.Version, s.CurrentVersion))
				continue
			}
			r, err := e.Rotate(ctx, leak.Path, "leak: "+leak.Where+"; policy: "+a.Reason)
			res.Rotation = &r
			if err != nil {
				res.Error = err.Error()
				res.Done = append(res.Done, "rotation failed: "+err.Error())
				return res, err
			}
			res.Done = append(res.Done, fmt.Sprintf("rotated to v%d", r.To))
			if s, err = e.Store.Describe(ctx, leak.Path); err != nil {
				return res, fmt.Errorf("respond to leak of %s: %w", leak.Path, err)
			}
		case policy.RespondRevokePrevious:
			if s.CurrentVersion == leak.Version {
				res.Done = append(res.Done, fmt.Sprintf("not revoked: v%d is still current", leak.Version))
				continue
			}
			if err := e.revokeVersion(ctx, s, leak.Version); err != nil {
				res.Error = err.Error()
				res.Done = append(res.Done, "revocation failed: "+err.Error())
				return res, err
			}
			res.Revoked = true
			res.Done = append(res.Done, fmt.Sprintf("revoked v%d", leak.Version))
		case policy.RespondNotify:
			res.Done = append(res.Done, "notify: "+a.Reason)
		case policy.RespondIgnore:
			res.Done = append(res.Done, "ignored: "+a.Reason)
		}
	}
	return res, nil
}

// LeakFinding is a leak of a managed secret version as a scan reports it:
// the version and where it was found. It is the wire form of a leak (POST
// /v1/respond): every field is metadata, and the type has no room for the
// secret's text, so a leak can be sent to a server without the value.
type LeakFinding struct {
	Path    string `json:"path"`
	Version int    `json:"version"`
	// Rule is the scanner rule that matched (passman-managed).
	Rule string `json:"rule"`
	// File and Line locate the match; Line is 0 for a path-only rule.
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	// Commit, Author and Date (RFC 3339) name the commit that added the
	// secret; empty outside git scans.
	Commit string `json:"commit,omitempty"`
	Author string `json:"author,omitempty"`
	Date   string `json:"date,omitempty"`
}

// Bounds of a LeakFinding's text fields. They keep the policy input, the
// rotation trigger and the audit entries that record it small.
const (
	maxLeakRule   = 256
	maxLeakFile   = 4096
	maxLeakAuthor = 256
	maxLeakCommit = 64 // a SHA-256 object name in hex
)

// Validate checks a leak's path and version and bounds its metadata.
// Errors never quote the fields: whatever was sent there stays out of
// messages.
func (f LeakFinding) Validate() error {
	if err := secret.ValidatePath(f.Path); err != nil {
		return fmt.Errorf("leak path: %w", err)
	}
	if f.Version < 1 {
		return fmt.Errorf("%w: leak of %s: version must be 1 or more", secret.ErrInvalidArgument, f.Path)
	}
	if f.Line < 0 {
		return fmt.Errorf("%w: leak of %s: line must not be negative", secret.ErrInvalidArgument, f.Path)
	}
	for _, t := range []struct {
		name, s string
		max     int
	}{{"rule", f.Rule, maxLeakRule}, {"file", f.File, maxLeakFile}, {"author", f.Author, maxLeakAuthor}} {
		if len(t.s) > t.max || !utf8.ValidString(t.s) || strings.ContainsFunc(t.s, unicode.IsControl) {
			return fmt.Errorf("%w: leak of %s: %s must be at most %d bytes of text without control characters", secret.ErrInvalidArgument, f.Path, t.name, t.max)
		}
	}
	if len(f.Commit) > maxLeakCommit || strings.Trim(f.Commit, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: leak of %s: commit must be a lowercase hex object name", secret.ErrInvalidArgument, f.Path)
	}
	if f.Date != "" {
		if _, err := time.Parse(time.RFC3339, f.Date); err != nil {
			return fmt.Errorf("%w: leak of %s: date must be an RFC 3339 time", secret.ErrInvalidArgument, f.Path)
		}
	}
	return nil
}

// leak is the Leak Respond acts on: the finding's fields for the policy,
// and its place for messages and the rotation trigger.
func (f LeakFinding) leak() Leak {
	where := fmt.Sprintf("%s:%d", f.File, f.Line)
	if f.Commit != "" {
		where += " in commit " + f.Commit[:min(len(f.Commit), 12)]
	}
	return Leak{Path: f.Path, Version: f.Version, Where: where, Finding: map[string]any{
		"rule": f.Rule, "file": f.File, "line": f.Line, "commit": f.Commit, "author": f.Author, "date": f.Date,
	}}
}

// leakKey identifies a leaked version: a response acts once per version,
// however many places it was found in.
type leakKey struct {
	path    string
	version int
}

// LeakFindings is the leaks a scan found: one per leaked managed version,
// located at its first finding, in the findings' order. Findings of other
// rules are not leaks of managed secrets and are left out.
func LeakFindings(findings []scanner.Finding) []LeakFinding {
	seen := map[leakKey]bool{}
	var out []LeakFinding
	for _, f := range findings {
		m := f.Managed
		if m == nil || seen[leakKey{m.Path, m.Version}] {
			continue
		}
		seen[leakKey{m.Path, m.Version}] = true
		out = append(out, LeakFinding{Path: m.Path, Version: m.Version, Rule: f.RuleID, File: f.File,
			Line: f.StartLine, Commit: f.Commit, Author: f.Author, Date: f.Date})
	}
	return out
}

// RespondToLeaks runs Respond for each leak, in order, and returns one
// result per leak; a version listed twice is responded to once and gets
// the first response's result. A failed response does not stop the
// others: its result's Error says why, and the first error is returned
// after them all.
func (e *Runner) RespondToLeaks(ctx context.Context, leaks []LeakFinding, decide Decider) ([]LeakResult, error) {
	results := make([]LeakResult, len(leaks))
	done := map[leakKey]int{}
	var first error
	for i, lf := range leaks {
		key := leakKey{lf.Path, lf.Version}
		if j, ok := done[key]; ok {
			results[i] = results[j]
			continue
		}
		done[key] = i
		res, err := e.respondTo(ctx, lf, decide)
		if err != nil {
			if res.Error == "" {
				res.Error = err.Error()
			}
			if first == nil {
				first = err
			}
		}
		results[i] = res
	}
	return results, first
}

// respondTo validates one leak and responds to it.
func (e *Runner) respondTo(ctx context.Context, lf LeakFinding, decide Decider) (LeakResult, error) {
	if err := lf.Validate(); err != nil {
		return LeakResult{Path: lf.Path, Version: lf.Version}, err
	}
	return e.Respond(ctx, lf.leak(), decide)
}

// AnnotateFindings notes on each managed finding what was done about its
// leaked version (its Response): the Done of the result for the same path
// and version, as RespondToLeaks returned it for LeakFindings(findings).
func AnnotateFindings(findings []scanner.Finding, results []LeakResult) {
	done := make(map[leakKey][]string, len(results))
	for _, r := range results {
		key := leakKey{r.Path, r.Version}
		if _, ok := done[key]; !ok {
			done[key] = r.Done
		}
	}
	for i := range findings {
		if m := findings[i].Managed; m != nil {
			if d, ok := done[leakKey{m.Path, m.Version}]; ok {
				findings[i].Response = d
			}
		}
	}
}

// revokeVersion revokes one version at once (a leaked value does not wait
// for a grace period), and clears a scheduled revocation of it.
func (e *Runner) revokeVersion(ctx context.Context, s secret.Secret, version int) error {
	if s.Metadata.Rotation == nil {
		return fmt.Errorf("%w: revoke %s v%d: no rotation configured", secret.ErrInvalidArgument, s.Path, version)
	}
	conn, _, err := e.Connectors.RotationConnector(ctx, s.Path, s.Metadata.Rotation)
	if err != nil {
		return fmt.Errorf("revoke %s v%d: %w", s.Path, version, err)
	}
	v, err := e.Store.Get(ctx, s.Path, secret.Selector{Version: version})
	if err != nil {
		return fmt.Errorf("revoke %s v%d: %w", s.Path, version, err)
	}
	if err := conn.Revoke(ctx, Target{Path: s.Path, Version: version, Value: v.Value}); err != nil {
		return fmt.Errorf("revoke %s v%d: %s", s.Path, version, scrub(err.Error(), v.Value))
	}
	if st := s.Metadata.RotationStatus; st != nil && st.RevokeVersion == version {
		next := *st
		next.RevokeAfter, next.RevokeVersion = time.Time{}, 0
		return e.record(ctx, s.Path, next)
	}
	return nil
}

// FindingResponder responds to leaks of managed secrets:
// passman.LeakResponder.
type FindingResponder interface {
	RespondToLeaks(ctx context.Context, leaks []LeakFinding) ([]LeakResult, error)
}

// RespondToFindings has r respond to the managed secrets among findings and notes
// on each finding what was done (Finding.Response). It returns the
// results, one per leaked version.
func RespondToFindings(ctx context.Context, r FindingResponder, findings []scanner.Finding) ([]LeakResult, error) {
	leaks := LeakFindings(findings)
	if len(leaks) == 0 {
		return nil, nil
	}
	results, err := r.RespondToLeaks(ctx, leaks)
	AnnotateFindings(findings, results)
	if err != nil {
		return results, fmt.Errorf("respond: %w", err)
	}
	return results, nil
}
