package core

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
)

// ActionCompare is the audit action of CompareValue.
const ActionCompare = "secret.compare"

// errCompareNotFound answers a compare of a missing secret and one the
// caller may not read alike, in process too: the in-process core serves
// the Terraform provider's local mode, and a compare is a read.
var errCompareNotFound = fmt.Errorf("%w: no such secret, or no permission to read it", secret.ErrNotFound)

// compareKey keys the MACs CompareValue compares. It is random per
// process and never leaves it, so a MAC says nothing about a value
// outside this comparison.
var compareKey = func() []byte {
	k := make([]byte, 32)
	// crypto/rand.Read does not fail (it aborts the program if the
	// kernel's generator is unusable).
	_, _ = rand.Read(k)
	return k
}()

// CompareValue implements passman.ValueComparer: whether value equals the
// current version's value of path, for a caller allowed to read path.
//
// A caller the policy refuses and a path with no secret get the same
// error (errCompareNotFound); the audit entry says which it was. A secret
// that exists but has no readable current version (a stub with no
// versions yet, or a current version deleted or destroyed) compares
// false: nothing equals it, and a caller who may read the secret learns
// no more than Describe tells it.
//
// The two values are compared by their HMAC-SHA256 under compareKey with
// subtle.ConstantTimeCompare: 32 bytes against 32 bytes, so neither the
// position of the first difference nor a difference in length shows in
// the comparison's time. Computing each MAC takes time linear in that
// value's length (about a nanosecond a byte), so the stored value's
// length shows, faintly, in the answer's time: to a caller who may read
// that value anyway, since everyone else is refused before it is opened.
//
// The audit entry records the path, the compared version and the result
// ("equal": "true"/"false"), never the value or its fingerprint.
func (l *Local) CompareValue(ctx context.Context, path string, value []byte) (bool, error) {
	o := op{action: ActionCompare, perm: policy.ActionRead, path: path, secret: true}
	if err := validateOp(o); err != nil {
		return false, l.deny(ctx, o, nil, err)
	}
	// Checked before the policy is asked, as a malformed path is: the
	// answer depends on the request alone.
	switch {
	case len(value) == 0:
		return false, l.deny(ctx, o, nil, fmt.Errorf("%w: value is empty (no secret version can be empty)", secret.ErrInvalidArgument))
	case len(value) > secret.MaxValueSize:
		return false, l.deny(ctx, o, nil, fmt.Errorf("%w: value is %d bytes, at most %d (1 MiB) allowed", secret.ErrTooLarge, len(value), secret.MaxValueSize))
	}
	l.refreshPolicies(ctx) // not in the read's transaction
	var dec *audit.Decision
	var refused error
	exists := false
	v, err := l.st.GetIf(ctx, path, secret.Selector{}, func(md *secret.Metadata) error {
		exists = md != nil
		dec, refused = l.decide(ctx, o, md)
		return refused
	})
	defer v.Value.Wipe()
	switch {
	case refused != nil:
		return false, hideDenial(l.deny(ctx, o, dec, refused))
	case dec == nil:
		// The read failed before the policy saw the record: ask it as
		// authorize does, so a refused caller is refused, whatever the
		// record's state.
		if dec, refused = l.authorize(ctx, o); refused != nil {
			return false, hideDenial(refused)
		}
	}
	if exists && (errors.Is(err, secret.ErrNotFound) || errors.Is(err, secret.ErrDeleted) || errors.Is(err, secret.ErrDestroyed)) {
		err = nil // no readable current version: nothing equals it
	}
	equal := false
	if err == nil && v.Value.Len() > 0 {
		equal = macEqual(value, v.Value.Reveal())
	}
	e := audit.Entry{Action: ActionCompare, Path: auditPath(path), Version: v.Info.Version, Decision: dec}
	if err == nil {
		e.Details = map[string]string{"equal": strconv.FormatBool(equal)}
	}
	if err := l.read(ctx, e, err); err != nil {
		return false, hideDenial(err)
	}
	return equal, nil
}

// hideDenial turns a denial or a missing secret into errCompareNotFound;
// an audit failure stays what it is (the caller must see the store fail
// closed).
func hideDenial(err error) error {
	if errors.Is(err, secret.ErrAudit) {
		return err
	}
	if errors.Is(err, secret.ErrPermissionDenied) || errors.Is(err, secret.ErrNotFound) {
		return errCompareNotFound
	}
	return err
}

// macEqual compares a and b by their MACs under compareKey, in time
// independent of where they differ and of whether their lengths do.
func macEqual(a, b []byte) bool {
	ma, mb := hmac.New(sha256.New, compareKey), hmac.New(sha256.New, compareKey)
	ma.Write(a)
	mb.Write(b)
	return subtle.ConstantTimeCompare(ma.Sum(nil), mb.Sum(nil)) == 1
}
