package core

import (
	"context"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/rotation"
)

var (
	_ passman.Connections      = (*Local)(nil)
	_ passman.Tokens           = (*Local)(nil)
	_ passman.PolicyEvaluator  = (*Local)(nil)
	_ passman.Rotator          = (*Local)(nil)
	_ passman.LeakResponder    = (*Local)(nil)
	_ passman.Readier          = (*Local)(nil)
	_ passman.ValueComparer    = (*Local)(nil)
	_ passman.Policies         = (*Local)(nil)
	_ passman.Scheduling       = (*Local)(nil)
	_ passman.Backups          = (*Local)(nil)
	_ rotation.ConnectorSource = (*Local)(nil)
)

// rotations is the rotation runner over l: every step a call of l as the
// context's subject, its connectors from l's connections.
func (l *Local) rotations() *rotation.Runner {
	e := rotation.NewRunner(l, l)
	e.Now = l.opts.Now
	e.Metrics = l.opts.Metrics
	return e
}

// Rotate implements passman.Rotator.
func (l *Local) Rotate(ctx context.Context, path, trigger string) (rotation.Result, error) {
	return l.rotations().Rotate(ctx, path, trigger)
}

// RotateDue implements passman.Rotator.
func (l *Local) RotateDue(ctx context.Context, opts rotation.DueOptions) (rotation.DueReport, error) {
	return l.rotations().RotateDue(ctx, opts)
}

// RotationStatus implements passman.Rotator.
func (l *Local) RotationStatus(ctx context.Context, prefix string) ([]rotation.Entry, error) {
	return l.rotations().Entries(ctx, prefix)
}

// RespondToLeaks implements passman.LeakResponder: the store's respond
// policy decides, the engine acts.
func (l *Local) RespondToLeaks(ctx context.Context, leaks []rotation.LeakFinding) ([]rotation.LeakResult, error) {
	return l.rotations().RespondToLeaks(ctx, leaks, l.decideLeakResponse)
}
