package core

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// RotateKeys adds a new master key, saves the key file, then re-wraps every
// data key under it without decrypting any value; the old keys are retired.
// It is safe to re-run after a crash: a second run adds yet another key and
// re-wraps whatever the first one did not reach. It needs a key file: keys
// from PASSMAN_MASTER_KEY belong to whoever set the variable.
func (l *Local) RotateKeys(ctx context.Context) (store.RewrapReport, error) {
	var rep store.RewrapReport
	dec, err := l.authorize(ctx, op{action: ActionKeyRotate, perm: policy.ActionAdmin})
	if err != nil {
		return rep, err
	}
	if l.keyFile == "" {
		err := fmt.Errorf("%w: keys rotate needs a key file; to rotate keys from %s, put the new key first (\"new,old\") and run 'passman keys rewrap'", secret.ErrPrecondition, keyring.EnvVar)
		return rep, l.read(ctx, audit.Entry{Action: ActionKeyRotate, Decision: dec}, err)
	}
	old := l.kr.Active()
	// Fail closed: record the attempt before anything changes.
	if err := l.record(ctx, audit.Entry{Action: ActionKeyRotate, Details: map[string]string{"phase": "start", "old_key": old}, Decision: dec}, nil); err != nil {
		return rep, err
	}
	// The new key is saved to the key file and registered with the store
	// before it becomes active, so nothing is ever sealed under a key that
	// a crash could lose.
	newID, err := l.kr.Rotate(l.opts.now(), func(next *keyring.Keyring) error {
		if err := next.SaveFile(l.keyFile); err != nil {
			return err
		}
		return l.st.RegisterKey(ctx, next.Active())
	})
	if err == nil {
		rep, err = l.st.Rewrap(ctx)
	}
	details := map[string]string{"old_key": old, "new_key": newID, "rewrapped": strconv.Itoa(rep.Rewrapped), "retired": strings.Join(rep.Retired, ",")}
	if err := l.read(ctx, audit.Entry{Action: ActionKeyRotate, Details: details, Decision: dec}, err); err != nil {
		return rep, err
	}
	return rep, l.checkpoint(ctx)
}

// Rewrap re-wraps every data key under the keyring's active key and retires
// the other keys, without adding a key. It finishes a rotation done outside
// passman: with PASSMAN_MASTER_KEY set to "new,old", run Rewrap, after which
// "new" alone opens the store.
func (l *Local) Rewrap(ctx context.Context) (store.RewrapReport, error) {
	dec, err := l.authorize(ctx, op{action: ActionKeyRewrap, perm: policy.ActionAdmin})
	if err != nil {
		return store.RewrapReport{}, err
	}
	if err := l.record(ctx, audit.Entry{Action: ActionKeyRewrap, Details: map[string]string{"phase": "start"}, Decision: dec}, nil); err != nil {
		return store.RewrapReport{}, err
	}
	rep, err := l.st.Rewrap(ctx)
	details := map[string]string{"active": rep.Active, "rewrapped": strconv.Itoa(rep.Rewrapped), "retired": strings.Join(rep.Retired, ",")}
	if err := l.read(ctx, audit.Entry{Action: ActionKeyRewrap, Details: details, Decision: dec}, err); err != nil {
		return rep, err
	}
	return rep, l.checkpoint(ctx)
}

// Keys describes the keyring in use (never key material). It is an admin
// operation, authorized and audited like the others.
func (l *Local) Keys(ctx context.Context) ([]keyring.Key, error) {
	dec, err := l.authorize(ctx, op{action: ActionKeyList, perm: policy.ActionAdmin})
	if err != nil {
		return nil, err
	}
	if err := l.read(ctx, audit.Entry{Action: ActionKeyList, Decision: dec}, nil); err != nil {
		return nil, err
	}
	return l.kr.Keys(), nil
}
