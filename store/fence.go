package store

import (
	"context"
	"errors"
)

// A Fence is a condition a write commits under, checked by the backend in
// the same atomic step as the commit: a write whose fence no longer holds
// changes nothing and fails with an error wrapping ErrFenced. It is how a
// node that may have lost an exclusive role (the scheduler's lead) while it
// was paused is kept from acting on it: the role's loss and the write are
// ordered by the backend, not by the node's clock.
//
// A backend honours the fences it knows and refuses a write under one it
// does not (it cannot check it, so it must not assume it holds). The etcd
// backend's is etcd.KeyFence. A single-node backend (bbolt) holds its file
// under an exclusive lock, so no other node can have taken a role over
// from its process: every fence holds there.
type Fence interface {
	// String names the fence in errors.
	String() string
}

// ErrFenced is wrapped by the error of a write whose fence did not hold.
var ErrFenced = errors.New("write fenced off")

type fenceKey struct{}

// WithFence returns ctx with f as the fence of every write made with it.
// Values of ctx are kept by contexts derived from it (context.WithoutCancel
// included), so work that outlives its caller's cancellation stays fenced.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf is the fence ctx carries, nil if none.
func FenceOf(ctx context.Context) Fence {
	f, _ := ctx.Value(fenceKey{}).(Fence)
	return f
}

// FenceChecker is a backend that can tell whether a fence holds without
// writing: what a holder of a role asks before it acts outside the store
// (a rotation's target), where no commit can carry the fence.
type FenceChecker interface {
	// CheckFence returns an error wrapping ErrFenced when f does not hold.
	CheckFence(ctx context.Context, f Fence) error
}

// CheckFence checks the fence ctx carries on b: nil when ctx carries none,
// or b is a single-node backend (no FenceChecker) where every fence holds.
func CheckFence(ctx context.Context, b Backend) error {
	f := FenceOf(ctx)
	if f == nil {
		return nil
	}
	fc, ok := b.(FenceChecker)
	if !ok {
		return nil
	}
	return fc.CheckFence(ctx, f)
}
