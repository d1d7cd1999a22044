package rotation

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/passman-dev/passman/secret"
)

// Entry is one rotated secret's standing, for `passman status` and for
// choosing what is due.
type Entry struct {
	Path       string `json:"path"`
	Connection string `json:"connection,omitempty"`
	// Legacy: the spec predates connections and does not run until it is
	// migrated ('passman connection migrate').
	Legacy bool                   `json:"legacy,omitempty"`
	Period secret.Duration        `json:"period,omitempty"`
	Due    bool                   `json:"due"`
	DueAt  time.Time              `json:"due_at,omitzero"`
	Status *secret.RotationStatus `json:"status,omitempty"`
	// RevokeDue: the previous version's grace period is over and it has
	// not been revoked yet.
	RevokeDue bool `json:"revoke_due,omitempty"`
}

// Entries lists every secret under prefix that has a rotation spec,
// sorted by path, with whether it is due at now: a rotation period has
// passed since the last successful rotation (or since its current
// version was written, if it never rotated), or a rotation is in progress
// (a crash left it: running it again resumes it).
func (e *Runner) Entries(ctx context.Context, prefix string) ([]Entry, error) {
	now := e.now()
	var out []Entry
	opts := secret.ListOptions{Prefix: prefix, Limit: secret.MaxListLimit, WithMetadata: true}
	for {
		page, err := e.Store.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
		for _, l := range page.Entries {
			m := l.Metadata
			if m == nil || m.Rotation == nil {
				continue
			}
			en := Entry{Path: l.Path, Connection: m.Rotation.Connection, Legacy: m.Rotation.Legacy(), Period: m.RotationPeriod, Status: m.RotationStatus}
			last := l.UpdatedAt
			if st := m.RotationStatus; st != nil {
				if !st.LastSuccess.IsZero() {
					last = st.LastSuccess
				}
				if st.State == secret.RotationInProgress {
					en.Due = true
				}
				en.RevokeDue = st.RevokeVersion > 0 && !st.RevokeAfter.IsZero() && !now.Before(st.RevokeAfter)
			}
			if m.RotationPeriod > 0 {
				en.DueAt = last.Add(time.Duration(m.RotationPeriod))
				if !now.Before(en.DueAt) {
					en.Due = true
				}
			}
			out = append(out, en)
		}
		if page.Next == "" {
			return out, nil
		}
		opts.After = page.Next
	}
}

// DueOptions tune RotateDue.
type DueOptions struct {
	Prefix string
	// Canary is the size of the first batch, rotated alone before the
	// rest; 0 means 5 % of the due secrets, at least 1 and at most 10. Any
	// failure in it stops the run.
	Canary int
	// MaxFailures stops the run once more rotations than this have
	// failed; 0 means 10 % of the due secrets, at least 1.
	MaxFailures int
	// Workers rotate concurrently after the canary; 0 means 4.
	Workers int
}

// DueReport is what RotateDue did.
type DueReport struct {
	Due        int      `json:"due"`
	Rotated    []Result `json:"rotated"`
	Failed     []Result `json:"failed"`
	Skipped    []string `json:"skipped,omitempty"` // not attempted: the run stopped
	Revoked    []string `json:"revoked,omitempty"`
	Stopped    string   `json:"stopped,omitempty"` // why the run stopped early
	CanarySize int      `json:"canary_size"`
}

// RotateDue rotates every due secret: a canary batch first, then the rest
// on several workers, stopping when failures exceed the threshold. It
// also revokes previous versions whose grace period is over.
func (e *Runner) RotateDue(ctx context.Context, opts DueOptions) (DueReport, error) {
	entries, err := e.Entries(ctx, opts.Prefix)
	if err != nil {
		return DueReport{}, err
	}
	var rep DueReport
	var due []string
	for _, en := range entries {
		if en.Due {
			due = append(due, en.Path)
		}
		if en.RevokeDue && !en.Due {
			if ok, err := e.Revoke(ctx, en.Path, false); err != nil {
				rep.Failed = append(rep.Failed, Result{Path: en.Path, Error: err.Error()})
			} else if ok {
				rep.Revoked = append(rep.Revoked, en.Path)
			}
		}
	}
	rep.Due = len(due)
	e.Metrics.SetStaleSecrets(len(due))
	if len(due) == 0 {
		return rep, nil
	}
	canary := opts.Canary
	if canary <= 0 {
		canary = min(max(len(due)/20, 1), 10)
	}
	canary = min(canary, len(due))
	maxFail := opts.MaxFailures
	if maxFail <= 0 {
		maxFail = max(len(due)/10, 1)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 4
	}
	rep.CanarySize = canary

	rotate := func(path string) (Result, error) { return e.Rotate(ctx, path, "due") }
	for _, p := range due[:canary] {
		r, err := rotate(p)
		if err != nil {
			r.Error = err.Error()
			rep.Failed = append(rep.Failed, r)
		} else {
			rep.Rotated = append(rep.Rotated, r)
		}
	}
	if len(rep.Failed) > 0 {
		rep.Stopped = fmt.Sprintf("%d of %d canary rotations failed", len(rep.Failed), canary)
		rep.Skipped = append(rep.Skipped, due[canary:]...)
		return rep, nil
	}

	var mu sync.Mutex
	stop := false
	next := canary
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if stop || next >= len(due) || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				p := due[next]
				next++
				mu.Unlock()
				r, err := rotate(p)
				mu.Lock()
				if err != nil {
					r.Error = err.Error()
					rep.Failed = append(rep.Failed, r)
					if len(rep.Failed) > maxFail && !stop {
						stop = true
						rep.Stopped = fmt.Sprintf("%d rotations failed, more than the threshold of %d", len(rep.Failed), maxFail)
					}
				} else {
					rep.Rotated = append(rep.Rotated, r)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.Skipped = append(rep.Skipped, due[next:]...)
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}
