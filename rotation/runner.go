package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/passman-dev/passman/generator"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/secret"
)

// Store is what the engine needs from passman.Service: every call is
// authorized and audited there, so each step of a rotation is on the audit
// log under the caller's identity.
type Store interface {
	Put(ctx context.Context, path string, value secret.Value, opts secret.PutOptions) (secret.VersionInfo, error)
	Get(ctx context.Context, path string, sel secret.Selector) (secret.Versioned, error)
	Describe(ctx context.Context, path string) (secret.Secret, error)
	List(ctx context.Context, opts secret.ListOptions) (secret.ListPage, error)
	Destroy(ctx context.Context, path string, versions []int) error
	UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error)
	SetStage(ctx context.Context, path string, stage secret.Stage, version int) error
}

// ConnectorSource gives the engine the connector a secret's rotation uses.
// It authorizes the caller to rotate path before anything else, so a
// refused caller causes no side effect anywhere; then it loads the
// connection the spec names, checks that the secret may use it, and binds
// the connector with a resolver that reads the connection's credential
// references with the connection's authority (Registry.Bind). It also
// names the connector, for metrics. core.Local implements it.
type ConnectorSource interface {
	RotationConnector(ctx context.Context, path string, spec *secret.Rotation) (Connector, string, error)
}

// Runner runs rotations: the staged protocol, resumption and rollback,
// due rotations and leak responses. (The policy package's Engine decides;
// a Runner acts.)
type Runner struct {
	Store      Store
	Connectors ConnectorSource
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics counts rotation attempts and outcomes; nil counts nothing.
	Metrics *metrics.Metrics
}

// NewRunner is the runner over st whose connectors come from src.
func NewRunner(st Store, src ConnectorSource) *Runner {
	return &Runner{Store: st, Connectors: src}
}

// Result is the outcome of one rotation.
type Result struct {
	Path string `json:"path"`
	// From is the version that was current; To the one that is now (0
	// when the rotation did not finish).
	From  int                  `json:"from"`
	To    int                  `json:"to,omitempty"`
	State secret.RotationState `json:"state"`
	// Resumed: this run finished a rotation a crash had interrupted.
	Resumed bool   `json:"resumed,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Rotate rotates path: create, set, test, finish. A rotation a crash left
// in progress is resumed from its recorded step instead (and reported as
// Resumed); a pending version no rotation owns is discarded first. A
// failure in set or test rolls the target back to the current value and
// destroys the pending version; the error returned says so.
func (e *Runner) Rotate(ctx context.Context, path, trigger string) (Result, error) {
	res, connector, err := e.rotate(ctx, path, trigger)
	if connector != "" && res.State != "" {
		e.Metrics.ObserveRotation(connector, string(res.State))
	}
	return res, err
}

// rotate is Rotate; it also names the connector, once known, for metrics.
func (e *Runner) rotate(ctx context.Context, path, trigger string) (Result, string, error) {
	s, err := e.Store.Describe(ctx, path)
	if err != nil {
		return Result{Path: path}, "", fmt.Errorf("rotate %s: %w", path, err)
	}
	spec := s.Metadata.Rotation
	if spec == nil {
		return Result{Path: path}, "", fmt.Errorf("%w: rotate %s: no rotation configured (name a connection with 'passman secret meta --rotation-connection')", secret.ErrInvalidArgument, path)
	}
	conn, kind, err := e.Connectors.RotationConnector(ctx, path, spec)
	if err != nil {
		return Result{Path: path}, "", fmt.Errorf("rotate %s: %w", path, err)
	}
	if st := s.Metadata.RotationStatus; st != nil && st.State == secret.RotationInProgress {
		res, err := e.resume(ctx, s, conn, *st)
		return res, kind, err
	}
	if p := versionWithStage(s, secret.StagePending); p != 0 {
		// A pending version without a rotation in progress is a leftover
		// (a crash before the status was written): it was never set on
		// the target, so it can go.
		if err := e.discard(ctx, path, p); err != nil {
			return Result{Path: path}, kind, fmt.Errorf("rotate %s: discard leftover pending v%d: %w", path, p, err)
		}
	}
	res, err := e.start(ctx, s, spec, conn, trigger)
	return res, kind, err
}

func (e *Runner) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// start creates the pending version and runs the remaining steps.
func (e *Runner) start(ctx context.Context, s secret.Secret, spec *secret.Rotation, conn Connector, trigger string) (Result, error) {
	path, from := s.Path, s.CurrentVersion
	var current secret.Value
	if from > 0 {
		v, err := e.Store.Get(ctx, path, secret.Selector{Version: from})
		if err != nil {
			return Result{Path: path, From: from}, fmt.Errorf("rotate %s: read current v%d: %w", path, from, err)
		}
		current = v.Value
	}
	gspec := generator.Spec{Length: spec.Length}
	for _, c := range spec.Classes {
		gspec.Classes = append(gspec.Classes, generator.Class(c))
	}
	generated, err := generator.Value(gspec)
	if err != nil {
		return Result{Path: path, From: from}, fmt.Errorf("rotate %s: %w", path, err)
	}
	next := generated
	if c, ok := conn.(Composer); ok {
		if next, err = c.Compose(current, generated); err != nil {
			return Result{Path: path, From: from}, fmt.Errorf("rotate %s: compose: %s", path, scrub(err.Error(), current, generated))
		}
	}
	// CAS on the current version: a concurrent write makes this rotation
	// fail instead of racing it (a CAS of 0 would mean "must not exist").
	opts := secret.PutOptions{Stage: secret.StagePending}
	if from > 0 {
		opts.CAS = &from
	}
	info, err := e.Store.Put(ctx, path, next, opts)
	if err != nil {
		return Result{Path: path, From: from}, fmt.Errorf("rotate %s: create pending version: %w", path, err)
	}
	st := secret.RotationStatus{
		State: secret.RotationInProgress, Step: secret.StepCreate, From: from, Pending: info.Version,
		Trigger: trigger, StartedAt: e.now().UTC(),
	}
	if prev := s.Metadata.RotationStatus; prev != nil {
		st.LastSuccess = prev.LastSuccess
		st.RevokeAfter, st.RevokeVersion = prev.RevokeAfter, prev.RevokeVersion
	}
	if err := e.record(ctx, path, st); err != nil {
		return Result{Path: path, From: from}, err
	}
	return e.advance(ctx, path, spec, conn, st, next, current, false)
}

// resume continues a rotation a crash interrupted, from its recorded step.
func (e *Runner) resume(ctx context.Context, s secret.Secret, conn Connector, st secret.RotationStatus) (Result, error) {
	path := s.Path
	res := Result{Path: path, From: st.From, Resumed: true}
	if st.Pending > 0 && s.CurrentVersion == st.Pending {
		// finish had promoted it; only the record is missing
		return e.succeed(ctx, path, s.Metadata.Rotation, st, true)
	}
	if st.Pending == 0 || !hasStage(s, st.Pending, secret.StagePending) {
		st.State, st.Step = secret.RotationRolledBack, ""
		st.Error = "interrupted before its pending version was kept; nothing was promoted"
		st.FinishedAt = e.now().UTC()
		if err := e.record(ctx, path, st); err != nil {
			return res, err
		}
		res.State, res.Error = st.State, st.Error
		return res, fmt.Errorf("rotate %s: an interrupted rotation could not be resumed: %s", path, st.Error)
	}
	pending, err := e.Store.Get(ctx, path, secret.Selector{Version: st.Pending})
	if err != nil {
		return res, fmt.Errorf("rotate %s: read pending v%d: %w", path, st.Pending, err)
	}
	var current secret.Value
	if st.From > 0 {
		v, err := e.Store.Get(ctx, path, secret.Selector{Version: st.From})
		if err != nil {
			return res, fmt.Errorf("rotate %s: read v%d: %w", path, st.From, err)
		}
		current = v.Value
	}
	return e.advance(ctx, path, s.Metadata.Rotation, conn, st, pending.Value, current, true)
}

// advance runs set, test and finish from st.Step on.
func (e *Runner) advance(ctx context.Context, path string, spec *secret.Rotation, conn Connector, st secret.RotationStatus, next, current secret.Value, resumed bool) (Result, error) {
	target := Target{Path: path, Version: st.Pending, Value: next, Current: current}
	steps := []struct {
		step secret.RotationStep
		run  func(context.Context, Target) error
	}{{secret.StepSet, conn.Set}, {secret.StepTest, conn.Test}}
	for _, s := range steps {
		if stepIndex(st.Step) > stepIndex(s.step) {
			continue
		}
		// Recorded before the connector acts: after a crash the next run
		// knows the target may already hold the pending value.
		st.Step = s.step
		if err := e.record(ctx, path, st); err != nil {
			return Result{Path: path, From: st.From, Resumed: resumed}, err
		}
		if err := s.run(ctx, target); err != nil {
			return e.rollback(ctx, path, conn, st, s.step, err, next, current, resumed)
		}
	}
	st.Step = secret.StepFinish
	if err := e.record(ctx, path, st); err != nil {
		return Result{Path: path, From: st.From, Resumed: resumed}, err
	}
	if err := e.Store.SetStage(ctx, path, secret.StageCurrent, st.Pending); err != nil {
		return Result{Path: path, From: st.From, Resumed: resumed}, fmt.Errorf("rotate %s: promote v%d: %w", path, st.Pending, err)
	}
	return e.succeed(ctx, path, spec, st, resumed)
}

func (e *Runner) succeed(ctx context.Context, path string, spec *secret.Rotation, st secret.RotationStatus, resumed bool) (Result, error) {
	now := e.now().UTC()
	st.State, st.Step, st.Error = secret.RotationSucceeded, "", ""
	st.FinishedAt, st.LastSuccess = now, now
	if spec != nil && spec.GracePeriod > 0 && st.From > 0 {
		st.RevokeAfter, st.RevokeVersion = now.Add(time.Duration(spec.GracePeriod)), st.From
	}
	if err := e.record(ctx, path, st); err != nil {
		return Result{Path: path, From: st.From, To: st.Pending, Resumed: resumed}, err
	}
	return Result{Path: path, From: st.From, To: st.Pending, State: st.State, Resumed: resumed}, nil
}

// rollback returns the target to the current value and destroys the
// pending version. If the target cannot be restored the pending version is
// kept (the target may hold it) and the rotation is marked failed.
func (e *Runner) rollback(ctx context.Context, path string, conn Connector, st secret.RotationStatus, step secret.RotationStep, cause error, next, current secret.Value, resumed bool) (Result, error) {
	msg := fmt.Sprintf("%s failed: %s", step, scrub(cause.Error(), next, current))
	res := Result{Path: path, From: st.From, Resumed: resumed}
	var rbErr error
	if st.From > 0 {
		rbErr = conn.Set(ctx, Target{Path: path, Version: st.From, Value: current, Current: current})
	}
	st.Step, st.FinishedAt = "", e.now().UTC()
	if rbErr != nil {
		st.State = secret.RotationFailed
		st.Error = msg + "; rollback failed: " + scrub(rbErr.Error(), next, current) + fmt.Sprintf("; pending v%d is kept: the target may hold it", st.Pending)
	} else {
		if err := e.discard(ctx, path, st.Pending); err != nil {
			return res, fmt.Errorf("rotate %s: %s; discard pending v%d: %w", path, msg, st.Pending, err)
		}
		st.State, st.Error = secret.RotationRolledBack, msg+"; rolled back"
	}
	if err := e.record(ctx, path, st); err != nil {
		return res, err
	}
	res.State, res.Error = st.State, st.Error
	return res, fmt.Errorf("rotate %s: %s", path, st.Error)
}

// discard removes the pending label and destroys the version: a value that
// never went live has no reason to stay readable.
func (e *Runner) discard(ctx context.Context, path string, version int) error {
	if err := e.Store.SetStage(ctx, path, secret.StagePending, 0); err != nil {
		return err
	}
	if err := e.Store.Destroy(ctx, path, []int{version}); err != nil && !errors.Is(err, secret.ErrNotFound) {
		return err
	}
	return nil
}

func (e *Runner) record(ctx context.Context, path string, st secret.RotationStatus) error {
	if _, err := e.Store.UpdateMetadata(ctx, path, secret.MetadataUpdate{RotationStatus: &st}); err != nil {
		return fmt.Errorf("rotate %s: record step %s: %w", path, st.Step, err)
	}
	return nil
}

// Revoke revokes the previous version of path once its grace period is
// over (at once if now is set), and reports whether it revoked one.
func (e *Runner) Revoke(ctx context.Context, path string, now bool) (bool, error) {
	s, err := e.Store.Describe(ctx, path)
	if err != nil {
		return false, fmt.Errorf("revoke %s: %w", path, err)
	}
	st := s.Metadata.RotationStatus
	if st == nil || st.State != secret.RotationSucceeded || st.RevokeVersion == 0 {
		return false, nil
	}
	if !now && (st.RevokeAfter.IsZero() || e.now().Before(st.RevokeAfter)) {
		return false, nil
	}
	return true, e.revokeVersion(ctx, s, st.RevokeVersion)
}

func versionWithStage(s secret.Secret, stage secret.Stage) int {
	for _, v := range s.Versions {
		if v.HasStage(stage) {
			return v.Version
		}
	}
	return 0
}

func hasStage(s secret.Secret, version int, stage secret.Stage) bool {
	for _, v := range s.Versions {
		if v.Version == version {
			return v.HasStage(stage)
		}
	}
	return false
}

func stepIndex(s secret.RotationStep) int {
	return slices.Index([]secret.RotationStep{secret.StepCreate, secret.StepSet, secret.StepTest, secret.StepFinish}, s)
}
