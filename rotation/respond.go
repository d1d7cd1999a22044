package rotation

import (
	"context"
	"fmt"
	"time"

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
func (e *Engine) Respond(ctx context.Context, leak Leak, decide Decider) (LeakResult, error) {
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

// RespondToFindings runs Respond for the managed findings of a scan, once
// per leaked version, and notes on each finding what was done (its
// Response). A failed response does not stop the others; the first error
// is returned after them all.
func (e *Engine) RespondToFindings(ctx context.Context, findings []scanner.Finding, decide Decider) error {
	type version struct {
		path string
		n    int
	}
	done := map[version][]string{}
	var first error
	for i := range findings {
		f := &findings[i]
		m := f.Managed
		if m == nil {
			continue
		}
		key := version{m.Path, m.Version}
		if r, ok := done[key]; ok {
			f.Response = r
			continue
		}
		where := fmt.Sprintf("%s:%d", f.File, f.StartLine)
		if f.Commit != "" {
			where += " in commit " + f.Commit[:min(len(f.Commit), 12)]
		}
		leak := Leak{Path: m.Path, Version: m.Version, Where: where, Finding: map[string]any{
			"rule": f.RuleID, "file": f.File, "line": f.StartLine, "commit": f.Commit, "author": f.Author, "date": f.Date,
		}}
		res, err := e.Respond(ctx, leak, decide)
		if err != nil && first == nil {
			first = err
		}
		done[key] = res.Done
		f.Response = res.Done
	}
	return first
}

// revokeVersion revokes one version at once (a leaked value does not wait
// for a grace period), and clears a scheduled revocation of it.
func (e *Engine) revokeVersion(ctx context.Context, s secret.Secret, version int) error {
	conn, err := e.Connectors.New(s.Metadata.Rotation, e.Resolver)
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
