// Package scheduler runs a server's housekeeping on a schedule, exactly
// once per cluster: due rotations with the rules of `passman rotate --due`
// (a canary batch first, stopping on failures), revocations of previous
// versions whose grace period is over, and the reaping of expired token
// records. Only the node that leads (Leadership) runs; each run is recorded
// in the store, so every server answers the same `passman status`.
//
// The scheduler holds no authority of its own choosing: its Service (core's
// Scheduled) acts as the scheduler subject, which the bundled policy lets
// act only on secrets someone configured a rotation for, with the
// connection that configuration names, as an admin's `rotate --due` would.
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/rotation"
)

// Defaults of Config.
const (
	DefaultInterval = time.Minute
	// MaxRuns is how many runs the store keeps for status; older ones go.
	MaxRuns = 10
	// MaxPaths bounds each path list of a recorded run, so the record stays
	// small whatever the store holds (an etcd value has a size limit).
	MaxPaths = 50
)

// Service is what the scheduler does its work with; core.Local's
// Scheduled implements it, acting as the scheduler subject.
type Service interface {
	RotateDue(ctx context.Context, opts rotation.DueOptions) (rotation.DueReport, error)
	ReapTokens(ctx context.Context, keep time.Duration) (int, error)
	// RecordLead records that node leads from since.
	RecordLead(ctx context.Context, node string, since time.Time) error
	// RecordRun adds run to the store's record, keeping the last MaxRuns.
	RecordRun(ctx context.Context, run Run) error
	// SchedulerStatus reads the record (Leader from the store).
	SchedulerStatus(ctx context.Context) (Status, error)
}

// Leadership decides which node runs the schedule. Single is a single
// node's; package etcdelect's is a cluster's.
type Leadership interface {
	// Campaign blocks until this node leads or ctx is done. The context it
	// returns is cancelled when the lead is lost; resign gives it up and
	// must be called once the work under it has stopped. It may carry a
	// store.Fence, on which every store write made with it is conditioned,
	// so a node that lost the lead without noticing writes nothing.
	Campaign(ctx context.Context) (lead context.Context, resign func(), err error)
	// Leader names the node that leads now, "" when none does.
	Leader(ctx context.Context) (string, error)
}

// Single is the leadership of a server that is alone on its store (bbolt):
// it always leads.
type Single struct{ Node string }

// Campaign implements Leadership: a single node leads at once.
func (s Single) Campaign(ctx context.Context) (context.Context, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	lead, cancel := context.WithCancel(ctx)
	return lead, cancel, nil
}

// Leader implements Leadership.
func (s Single) Leader(context.Context) (string, error) { return s.Node, nil }

// Run is one scheduler run as the store records it. Paths are secret
// paths; errors are the rotation's recorded errors (scrubbed of values by
// the runner), never a value.
type Run struct {
	Node string `json:"node"`
	// DueAt is when the run was due: the previous run's start plus the
	// interval (its start, for the first run).
	DueAt      time.Time `json:"due_at"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Due        int       `json:"due"`
	Rotated    []string  `json:"rotated,omitempty"`
	// Resumed lists rotations an earlier run (or a dead leader) left in
	// progress, finished by this run.
	Resumed []string  `json:"resumed,omitempty"`
	Failed  []Failure `json:"failed,omitempty"`
	Revoked []string  `json:"revoked,omitempty"`
	Skipped int       `json:"skipped,omitempty"`
	Stopped string    `json:"stopped,omitempty"`
	Reaped  int       `json:"reaped"`
	// Errors are failures of a whole step (listing due secrets, reaping).
	Errors []string `json:"errors,omitempty"`
	// Truncated counts paths left out of the lists above (MaxPaths).
	Truncated int `json:"truncated,omitempty"`
}

// Failure is one failed rotation or revocation.
type Failure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// OK reports whether nothing in the run failed.
func (r Run) OK() bool { return len(r.Failed) == 0 && len(r.Errors) == 0 && r.Stopped == "" }

// Lag is how late the run started.
func (r Run) Lag() time.Duration { return max(r.StartedAt.Sub(r.DueAt), 0) }

// Status is the scheduler's state as `passman status` shows it.
type Status struct {
	// Leader is the node leading now when the server could ask its
	// election (Live), else the last node the store recorded as leading.
	Leader      string    `json:"leader,omitempty"`
	LeaderSince time.Time `json:"leader_since,omitzero"`
	Live        bool      `json:"live"`
	// Runs are the last runs, newest first.
	Runs []Run `json:"runs"`
}

// Config tunes a Scheduler.
type Config struct {
	// Node names this server in the record and the election.
	Node string
	// Interval separates runs; 0 means DefaultInterval.
	Interval time.Duration
	// Jitter adds a random delay in [0, Jitter) to each interval, so that
	// servers of many deployments do not all hit the same targets at once.
	Jitter time.Duration
	// Due are the rules of each run's due rotations.
	Due rotation.DueOptions
	// TokenRetention is passed to ReapTokens.
	TokenRetention time.Duration
	// Now is the clock; nil means time.Now.
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *metrics.Scheduler
}

// Scheduler runs the schedule while its node leads.
type Scheduler struct {
	svc  Service
	lead Leadership
	cfg  Config
}

// New is a scheduler doing its work with svc while lead says it leads.
func New(svc Service, lead Leadership, cfg Config) (*Scheduler, error) {
	switch {
	case cfg.Interval < 0, cfg.Jitter < 0:
		return nil, errors.New("scheduler: interval and jitter must not be negative")
	case cfg.Node == "":
		return nil, errors.New("scheduler: a node name is required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{svc: svc, lead: lead, cfg: cfg}, nil
}

// Run campaigns for the lead and, while it leads, runs the schedule; it
// campaigns again when the lead is lost. It returns when ctx is done.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		lead, resign, err := s.lead.Campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "scheduler campaign failed", slog.String("error", err.Error()))
			if !sleep(ctx, s.cfg.Interval) {
				return nil
			}
			continue
		}
		s.cfg.Metrics.SetLeader(true)
		s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "scheduler leads", slog.String("node", s.cfg.Node))
		s.leadLoop(lead)
		resign()
		s.cfg.Metrics.SetLeader(false)
		if ctx.Err() != nil {
			return nil
		}
		s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "scheduler lost the lead", slog.String("node", s.cfg.Node))
	}
}

// leadLoop runs the schedule until lead is done. The first run is due one
// interval after the last recorded run started (so a new leader neither
// repeats a run the old one just made nor waits a whole interval after a
// dead one).
func (s *Scheduler) leadLoop(lead context.Context) {
	now := s.cfg.Now()
	if err := s.svc.RecordLead(lead, s.cfg.Node, now); err != nil && lead.Err() == nil {
		s.cfg.Logger.LogAttrs(lead, slog.LevelWarn, "scheduler could not record its lead", slog.String("error", err.Error()))
	}
	dueAt := now
	if st, err := s.svc.SchedulerStatus(lead); err == nil && len(st.Runs) > 0 {
		dueAt = st.Runs[0].StartedAt.Add(s.cfg.Interval)
	}
	for {
		if wait := dueAt.Sub(s.cfg.Now()); wait > 0 && !sleep(lead, wait) {
			return
		}
		run, _ := s.RunOnce(lead, dueAt)
		if lead.Err() != nil {
			return
		}
		dueAt = run.StartedAt.Add(s.cfg.Interval + s.jitter())
	}
}

func (s *Scheduler) jitter() time.Duration {
	if s.cfg.Jitter <= 0 {
		return 0
	}
	return rand.N(s.cfg.Jitter)
}

// RunOnce runs the schedule's work once, now, and records the run: due
// rotations and revocations, then token reaping. dueAt is when it was due
// (for the lag). The error is the recording's; the run's own failures are
// in the Run.
func (s *Scheduler) RunOnce(ctx context.Context, dueAt time.Time) (Run, error) {
	run := Run{Node: s.cfg.Node, DueAt: dueAt.UTC(), StartedAt: s.cfg.Now().UTC()}
	rep, err := s.svc.RotateDue(ctx, s.cfg.Due)
	if err != nil {
		run.Errors = append(run.Errors, "due rotations: "+err.Error())
	}
	run.summarize(rep)
	n, err := s.svc.ReapTokens(ctx, s.cfg.TokenRetention)
	run.Reaped = n
	if err != nil {
		run.Errors = append(run.Errors, "token reaping: "+err.Error())
	}
	run.FinishedAt = s.cfg.Now().UTC()
	s.cfg.Metrics.ObserveRun(run.Lag(), run.OK())
	attrs := []slog.Attr{slog.Int("due", run.Due), slog.Int("rotated", len(run.Rotated)+len(run.Resumed)), slog.Int("failed", len(run.Failed)),
		slog.Int("revoked", len(run.Revoked)), slog.Int("reaped", run.Reaped), slog.Duration("lag", run.Lag())}
	level := slog.LevelInfo
	if !run.OK() {
		level = slog.LevelWarn
	}
	s.cfg.Logger.LogAttrs(ctx, level, "scheduler run", attrs...)
	// Recorded even when ctx was cancelled meanwhile: what was done, was.
	// A fence ctx carries still holds the record to the lead, so a node
	// whose lead passed to another (an etcd election's) records nothing:
	// its run's rotations are in their secrets' status and the audit log.
	if err := s.svc.RecordRun(context.WithoutCancel(ctx), run); err != nil {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "scheduler could not record its run", slog.String("error", err.Error()))
		return run, fmt.Errorf("record scheduler run: %w", err)
	}
	return run, nil
}

// summarize fills the run from rep, keeping at most MaxPaths per list.
func (r *Run) summarize(rep rotation.DueReport) {
	r.Due, r.Stopped = rep.Due, rep.Stopped
	r.Skipped = len(rep.Skipped)
	keep := func(list []string, p string) []string {
		if len(list) >= MaxPaths {
			r.Truncated++
			return list
		}
		return append(list, p)
	}
	for _, res := range rep.Rotated {
		if res.Resumed {
			r.Resumed = keep(r.Resumed, res.Path)
		} else {
			r.Rotated = keep(r.Rotated, res.Path)
		}
	}
	for _, res := range rep.Failed {
		if len(r.Failed) >= MaxPaths {
			r.Truncated++
			continue
		}
		r.Failed = append(r.Failed, Failure{Path: res.Path, Error: res.Error})
	}
	for _, p := range rep.Revoked {
		r.Revoked = keep(r.Revoked, p)
	}
}

// sleep waits d or until ctx is done, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
