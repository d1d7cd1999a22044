package core

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/scheduler"
	"github.com/passman-dev/passman/secret"
)

// Audit actions of the scheduler.
const (
	ActionSchedulerLead   = "scheduler.lead"
	ActionSchedulerRun    = "scheduler.run"
	ActionSchedulerStatus = "scheduler.status"
)

// Store metadata records of the scheduler: shared by every server of a
// store, so each answers the same status.
const (
	schedulerLeaderMeta = "scheduler-leader"
	schedulerRunsMeta   = "scheduler-runs"
)

// SchedulerSubject is who the scheduler acts as. Its kind is one no login
// yields (policy.KindScheduler), so no caller can borrow it; the bundled
// policy lets it act only on secrets with a configured rotation.
var SchedulerSubject = policy.Subject{ID: "scheduler", Kind: policy.KindScheduler}

var _ scheduler.Service = scheduled{}

// Scheduled is the Service a server's scheduler works with: every call is
// l's, authorized and audited as SchedulerSubject, whatever the context
// held.
func (l *Local) Scheduled() scheduler.Service { return scheduled{l} }

type scheduled struct{ l *Local }

func (s scheduled) as(ctx context.Context) context.Context {
	return WithSubject(ctx, SchedulerSubject)
}

func (s scheduled) RotateDue(ctx context.Context, opts rotation.DueOptions) (rotation.DueReport, error) {
	return s.l.RotateDue(s.as(ctx), opts)
}

func (s scheduled) ReapTokens(ctx context.Context, keep time.Duration) (int, error) {
	if keep == 0 {
		keep = DefaultTokenRetention
	}
	return s.l.ReapTokens(s.as(ctx), keep)
}

func (s scheduled) SchedulerStatus(ctx context.Context) (scheduler.Status, error) {
	return s.l.SchedulerStatus(s.as(ctx))
}

func (s scheduled) RecordLead(ctx context.Context, node string, since time.Time) error {
	ctx = s.as(ctx)
	o := op{action: ActionSchedulerLead, perm: policy.ActionAdmin, details: map[string]string{"node": node}}
	dec, err := s.l.authorize(ctx, o)
	if err != nil {
		return err
	}
	b, err := json.Marshal(leaderRecord{Node: node, Since: since.UTC()})
	if err == nil {
		err = s.l.st.UpdateMeta(ctx, schedulerLeaderMeta, func([]byte) ([]byte, error) { return b, nil })
	}
	return s.l.read(ctx, audit.Entry{Action: o.action, Details: o.details, Decision: dec}, err)
}

func (s scheduled) RecordRun(ctx context.Context, run scheduler.Run) error {
	ctx = s.as(ctx)
	details := map[string]string{
		"node": run.Node, "due": strconv.Itoa(run.Due), "rotated": strconv.Itoa(len(run.Rotated)),
		"resumed": strconv.Itoa(len(run.Resumed)), "failed": strconv.Itoa(len(run.Failed)),
		"revoked": strconv.Itoa(len(run.Revoked)), "reaped": strconv.Itoa(run.Reaped),
	}
	if run.Stopped != "" {
		details["stopped"] = run.Stopped
	}
	o := op{action: ActionSchedulerRun, perm: policy.ActionAdmin, details: details}
	dec, err := s.l.authorize(ctx, o)
	if err != nil {
		return err
	}
	err = s.l.st.UpdateMeta(ctx, schedulerRunsMeta, func(old []byte) ([]byte, error) {
		var runs []scheduler.Run
		if len(old) > 0 {
			if err := json.Unmarshal(old, &runs); err != nil {
				// A damaged record of past runs must not stop the
				// schedule: it starts again.
				runs = nil
			}
		}
		runs = append([]scheduler.Run{run}, runs...)
		return json.Marshal(runs[:min(len(runs), scheduler.MaxRuns)])
	})
	return s.l.read(ctx, audit.Entry{Action: o.action, Details: details, Decision: dec}, err)
}

type leaderRecord struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// SchedulerStatus reports the leader the store last recorded and the last
// scheduler runs, newest first. The runs name secrets across the store, so
// it is an admin action, audited.
func (l *Local) SchedulerStatus(ctx context.Context) (scheduler.Status, error) {
	o := op{action: ActionSchedulerStatus, perm: policy.ActionAdmin}
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return scheduler.Status{}, err
	}
	st, err := l.schedulerStatus(ctx)
	return st, l.read(ctx, audit.Entry{Action: o.action, Decision: dec}, err)
}

func (l *Local) schedulerStatus(ctx context.Context) (scheduler.Status, error) {
	st := scheduler.Status{Runs: []scheduler.Run{}}
	b, err := l.st.Meta(ctx, schedulerLeaderMeta)
	if err != nil {
		return st, fmt.Errorf("read scheduler leader: %w", err)
	}
	if len(b) > 0 {
		var lr leaderRecord
		if err := json.Unmarshal(b, &lr); err != nil {
			return st, fmt.Errorf("%w: scheduler leader record: %v", secret.ErrCorrupt, err)
		}
		st.Leader, st.LeaderSince = lr.Node, lr.Since
	}
	if b, err = l.st.Meta(ctx, schedulerRunsMeta); err != nil {
		return st, fmt.Errorf("read scheduler runs: %w", err)
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &st.Runs); err != nil {
			return st, fmt.Errorf("%w: scheduler runs record: %v", secret.ErrCorrupt, err)
		}
	}
	return st, nil
}
