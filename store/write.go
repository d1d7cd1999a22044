package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

// Event describes a change about to commit. Core turns it into an audit
// entry; it never carries a value, only its fingerprint.
type Event struct {
	Path        string
	Versions    []int
	Fingerprint string
}

// Call carries what a mutation needs from its caller.
type Call struct {
	// Actor is recorded as the version's or metadata's author.
	Actor string
	// Commit, when set, runs inside the write transaction after the change
	// is staged; an error aborts the change. Core uses it to have the audit
	// entry written and the chain head recorded before the transaction
	// commits. Like the rest of a transaction function it may run more than
	// once for one call with a batching backend, so it must keep its effects
	// inside tx or defer them to the backend's pre-commit callbacks.
	Commit func(tx Tx, ev Event) error
	// Allow, when set, decides whether the change may happen, on the
	// secret's metadata as the transaction read it (nil when the secret
	// does not exist). Every mutation of a secret calls it right after
	// loading the record, before any other check and before any write, so
	// the decision is on the state the change commits over: a record
	// changed by another writer in between fails the commit's compares and
	// the function runs again, Allow included. Its error ends the call
	// with nothing written. Like Commit it may run more than once for one
	// call, so it must have no effects beyond what its caller captures,
	// and must not modify md.
	Allow func(md *secret.Metadata) error
}

// trackingTx records whether a transaction function wrote anything, so a
// business error (conflict, not found) can be told apart from a failure
// half-way through a change.
type trackingTx struct {
	Tx
	wrote bool
}

func (t *trackingTx) Put(k, v []byte) error { t.wrote = true; return t.Tx.Put(k, v) }
func (t *trackingTx) Delete(k []byte) error { t.wrote = true; return t.Tx.Delete(k) }

// mutate runs fn in a (possibly batched) write transaction. fn must return
// business errors before its first write: such an error is handed back
// without failing the transaction, so a batching backend does not re-run the
// other callers that share the commit. An error after a write rolls back.
func (s *Store) mutate(ctx context.Context, c Call, fn func(tx Tx) (Event, error)) (Event, error) {
	var ev Event
	var opErr error
	err := s.batch(ctx, func(tx Tx) error {
		t := &trackingTx{Tx: tx}
		ev, opErr = fn(t)
		if opErr != nil {
			if t.wrote {
				return opErr
			}
			return nil
		}
		if c.Commit != nil {
			return c.Commit(tx, ev)
		}
		return nil
	})
	if err != nil {
		return ev, err
	}
	return ev, opErr
}

// loadAllowed loads path's record and asks c.Allow about it. As with
// loadRecord, a missing secret gives an empty record and an error wrapping
// secret.ErrNotFound (Allow saw nil). A record that could not be read or
// decoded is returned as an error without asking Allow: the caller then
// asks its policy on its own, so that a refused caller learns nothing of
// the record.
func (s *Store) loadAllowed(tx Tx, c Call, path string) (*record, error) {
	r, err := s.loadRecord(tx, path)
	if r == nil {
		return nil, err
	}
	if c.Allow != nil {
		var md *secret.Metadata
		if err == nil {
			md = &r.Meta
		}
		if aerr := c.Allow(md); aerr != nil {
			return nil, aerr
		}
	}
	return r, err
}

// Put writes value as a new version of path.
func (s *Store) Put(ctx context.Context, c Call, path string, value []byte, opts secret.PutOptions) (secret.VersionInfo, error) {
	if err := secret.ValidatePath(path); err != nil {
		return secret.VersionInfo{}, err
	}
	if len(value) == 0 {
		// An empty value is almost always a mistake (a script reading an
		// empty file or /dev/null), and would fingerprint as nothing.
		return secret.VersionInfo{}, fmt.Errorf("%w: value is empty", secret.ErrInvalidArgument)
	}
	if len(value) > secret.MaxValueSize {
		return secret.VersionInfo{}, fmt.Errorf("%w: value is %d bytes, at most %d (1 MiB) allowed", secret.ErrTooLarge, len(value), secret.MaxValueSize)
	}
	stage := opts.Stage
	if stage == "" {
		stage = secret.StageCurrent
	}
	if stage != secret.StageCurrent && stage != secret.StagePending {
		return secret.VersionInfo{}, fmt.Errorf("%w: a new version can be staged current or pending, not %s", secret.ErrInvalidArgument, stage)
	}
	if opts.CAS != nil && *opts.CAS < 0 {
		return secret.VersionInfo{}, fmt.Errorf("%w: check-and-set version must not be negative", secret.ErrInvalidArgument)
	}
	if opts.Metadata != nil {
		// Validate before the transaction, so a bad update fails fast; the
		// merge onto stored metadata is checked again inside it.
		var probe secret.Metadata
		if err := applyMetadata(&probe, *opts.Metadata); err != nil {
			return secret.VersionInfo{}, err
		}
	}
	fp := s.det.Sum(value)
	var info secret.VersionInfo
	_, err := s.mutate(ctx, c, func(tx Tx) (Event, error) {
		r, err := s.loadAllowed(tx, c, path)
		isNew := errors.Is(err, secret.ErrNotFound)
		if err != nil && !isNew {
			return Event{}, err
		}
		if opts.CAS != nil && *opts.CAS == 0 && !isNew {
			return Event{}, fmt.Errorf("%w: check-and-set 0 wants %s not to exist, but it does", secret.ErrConflict, path)
		}
		if opts.CAS != nil {
			if cur := r.Stages[secret.StageCurrent]; cur != *opts.CAS {
				return Event{}, fmt.Errorf("%w: check-and-set wanted current version %d of %s, found %d", secret.ErrConflict, *opts.CAS, path, cur)
			}
		}
		if opts.Metadata != nil {
			if err := applyMetadata(&r.Meta, *opts.Metadata); err != nil {
				return Event{}, err
			}
		}
		v, err := s.appendVersion(tx, r, path, value, fp, stage, c.Actor)
		if err != nil {
			return Event{}, err
		}
		info = r.info(v)
		return Event{Path: path, Versions: []int{v.N}, Fingerprint: v.Fingerprint}, nil
	})
	return info, err
}

// appendVersion seals value as the next version of r, labels it, prunes and
// saves r. It writes, so callers check everything before calling it.
func (s *Store) appendVersion(tx Tx, r *record, path string, value, fp []byte, stage secret.Stage, actor string) (*versionRecord, error) {
	n := r.Last + 1
	sealed, err := s.kr.Seal(value, keyring.VersionAAD(path, n))
	if err != nil {
		return nil, fmt.Errorf("seal %s v%d: %w", path, n, err)
	}
	if err := s.checkSealKey(tx, sealed.KeyID); err != nil {
		return nil, err
	}
	sb, err := sealed.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if err := tx.Put(valueKey(path, n), sb); err != nil {
		return nil, fmt.Errorf("write %s v%d: %w", path, n, err)
	}
	if err := tx.Put(fpKey(fp, path, n), nil); err != nil {
		return nil, fmt.Errorf("index %s v%d: %w", path, n, err)
	}
	var altHex string
	trim := lineEndLen(value)
	if trim > 0 {
		alt := s.det.Sum(value[:len(value)-trim])
		if err := tx.Put(fpKey(alt, path, n), nil); err != nil {
			return nil, fmt.Errorf("index %s v%d: %w", path, n, err)
		}
		altHex = hex.EncodeToString(alt)
	}
	now := s.now().UTC()
	if r.Meta.CreatedAt.IsZero() {
		r.Meta.CreatedAt, r.Meta.CreatedBy = now, actor
	}
	r.Meta.UpdatedAt, r.Meta.UpdatedBy = now, actor
	r.Last = n
	r.Versions = append(r.Versions, versionRecord{N: n, CreatedAt: now, CreatedBy: actor, State: secret.StateActive, Fingerprint: hex.EncodeToString(fp), AltFingerprint: altHex, AltTrim: trim})
	if stage == secret.StagePending {
		r.setStage(secret.StagePending, n)
	} else {
		r.moveCurrent(n)
	}
	if err := s.prune(tx, r, path); err != nil {
		return nil, err
	}
	if err := s.saveRecord(tx, path, r); err != nil {
		return nil, err
	}
	return r.version(n), nil
}

// prune drops the oldest versions beyond the secret's limit. A version with
// a stage label is never pruned: a rotation's pending version or the
// previous version still in its grace period must survive a burst of writes.
func (s *Store) prune(tx Tx, r *record, path string) error {
	excess := len(r.Versions) - r.maxVersions()
	if excess <= 0 {
		return nil
	}
	keep := r.Versions[:0]
	for _, v := range r.Versions {
		if excess > 0 && len(r.stagesOf(v.N)) == 0 {
			if err := s.dropValue(tx, path, &v); err != nil {
				return err
			}
			excess--
			continue
		}
		keep = append(keep, v)
	}
	r.Versions = keep
	return nil
}

// dropValue deletes a version's ciphertext and index entry.
func (s *Store) dropValue(tx Tx, path string, v *versionRecord) error {
	if err := tx.Delete(valueKey(path, v.N)); err != nil {
		return fmt.Errorf("delete %s v%d: %w", path, v.N, err)
	}
	for _, h := range []string{v.Fingerprint, v.AltFingerprint} {
		if fp, ok := decodeFP(h); ok {
			if err := tx.Delete(fpKey(fp, path, v.N)); err != nil {
				return fmt.Errorf("unindex %s v%d: %w", path, v.N, err)
			}
		}
	}
	return nil
}

// lineEndLen is the length of value's trailing line ending ("\n" or
// "\r\n"), 0 if it has none or would be empty without it.
func lineEndLen(value []byte) int {
	n := len(value)
	switch {
	case n > 2 && value[n-2] == '\r' && value[n-1] == '\n':
		return 2
	case n > 1 && value[n-1] == '\n':
		return 1
	}
	return 0
}

// Rollback writes the value of an older version back as a new current
// version; history is never rewritten.
func (s *Store) Rollback(ctx context.Context, c Call, path string, version int) (secret.VersionInfo, error) {
	if err := secret.ValidatePath(path); err != nil {
		return secret.VersionInfo{}, err
	}
	var info secret.VersionInfo
	_, err := s.mutate(ctx, c, func(tx Tx) (Event, error) {
		r, err := s.loadAllowed(tx, c, path)
		if err != nil {
			return Event{}, err
		}
		old, err := usable(r, path, version)
		if err != nil {
			return Event{}, err
		}
		value, err := s.openValue(tx, path, old.N)
		if err != nil {
			return Event{}, err
		}
		defer clear(value)
		v, err := s.appendVersion(tx, r, path, value, s.det.Sum(value), secret.StageCurrent, c.Actor)
		if err != nil {
			return Event{}, err
		}
		info = r.info(v)
		return Event{Path: path, Versions: []int{version, v.N}, Fingerprint: v.Fingerprint}, nil
	})
	return info, err
}

// usable returns version n of r if it exists and holds a readable value.
func usable(r *record, path string, n int) (*versionRecord, error) {
	v := r.version(n)
	switch {
	case v == nil:
		return nil, fmt.Errorf("%w: %s has no version %d", secret.ErrNotFound, path, n)
	case v.State == secret.StateDeleted:
		return nil, fmt.Errorf("%w: %s v%d is deleted; undelete it first", secret.ErrDeleted, path, n)
	case v.State == secret.StateDestroyed:
		return nil, fmt.Errorf("%w: %s v%d is destroyed", secret.ErrDestroyed, path, n)
	}
	return v, nil
}

// Delete soft-deletes versions (the current one when versions is empty):
// their values become unreadable until Undelete. Deleting a deleted version
// is a no-op.
func (s *Store) Delete(ctx context.Context, c Call, path string, versions []int) error {
	return s.setState(ctx, c, path, versions, secret.StateDeleted)
}

// Undelete restores soft-deleted versions.
func (s *Store) Undelete(ctx context.Context, c Call, path string, versions []int) error {
	return s.setState(ctx, c, path, versions, secret.StateActive)
}

// setState moves versions between active and deleted; a destroyed version
// can do neither.
func (s *Store) setState(ctx context.Context, c Call, path string, versions []int, to secret.VersionState) error {
	return s.changeState(ctx, c, path, versions, func(r *record, v *versionRecord) error {
		if v.State == secret.StateDestroyed {
			return fmt.Errorf("%w: %s v%d is destroyed; it can be neither deleted nor undeleted", secret.ErrDestroyed, path, v.N)
		}
		return nil
	}, func(tx Tx, r *record, v *versionRecord) error {
		v.State = to
		return nil
	})
}

// Destroy removes versions' ciphertext for good. The current version cannot
// be destroyed (write or roll back to a new one first); other stage labels on
// a destroyed version are removed.
func (s *Store) Destroy(ctx context.Context, c Call, path string, versions []int) error {
	if len(versions) == 0 {
		return fmt.Errorf("%w: name the versions to destroy", secret.ErrInvalidArgument)
	}
	return s.changeState(ctx, c, path, versions, func(r *record, v *versionRecord) error {
		if r.Stages[secret.StageCurrent] == v.N && v.State != secret.StateDestroyed {
			return fmt.Errorf("%w: %s v%d is the current version; write a new version or roll back before destroying it", secret.ErrPrecondition, path, v.N)
		}
		return nil
	}, func(tx Tx, r *record, v *versionRecord) error {
		if v.State == secret.StateDestroyed {
			return nil
		}
		if err := s.dropValue(tx, path, v); err != nil {
			return err
		}
		for _, st := range r.stagesOf(v.N) {
			r.setStage(st, 0)
		}
		v.State = secret.StateDestroyed
		return nil
	})
}

// changeState checks every named version with check before changing any of
// them with apply, so a request naming one bad version changes nothing.
func (s *Store) changeState(ctx context.Context, c Call, path string, versions []int, check func(*record, *versionRecord) error, apply func(Tx, *record, *versionRecord) error) error {
	if err := secret.ValidatePath(path); err != nil {
		return err
	}
	_, err := s.mutate(ctx, c, func(tx Tx) (Event, error) {
		r, err := s.loadAllowed(tx, c, path)
		if err != nil {
			return Event{}, err
		}
		ns := slices.Clone(versions)
		if len(ns) == 0 {
			cur := r.Stages[secret.StageCurrent]
			if cur == 0 {
				return Event{}, fmt.Errorf("%w: %s has no current version", secret.ErrNotFound, path)
			}
			ns = []int{cur}
		}
		slices.Sort(ns)
		ns = slices.Compact(ns)
		for _, n := range ns {
			v := r.version(n)
			if v == nil {
				return Event{}, fmt.Errorf("%w: %s has no version %d", secret.ErrNotFound, path, n)
			}
			if err := check(r, v); err != nil {
				return Event{}, err
			}
		}
		for _, n := range ns {
			if err := apply(tx, r, r.version(n)); err != nil {
				return Event{}, err
			}
		}
		r.Meta.UpdatedAt, r.Meta.UpdatedBy = s.now().UTC(), c.Actor
		if err := s.saveRecord(tx, path, r); err != nil {
			return Event{}, err
		}
		return Event{Path: path, Versions: ns}, nil
	})
	return err
}

// Purge removes a secret entirely: every version's ciphertext, its index
// entries and its metadata.
func (s *Store) Purge(ctx context.Context, c Call, path string) error {
	if err := secret.ValidatePath(path); err != nil {
		return err
	}
	_, err := s.mutate(ctx, c, func(tx Tx) (Event, error) {
		r, err := s.loadAllowed(tx, c, path)
		if err != nil {
			return Event{}, err
		}
		var ns []int
		for i := range r.Versions {
			v := &r.Versions[i]
			ns = append(ns, v.N)
			if err := s.dropValue(tx, path, v); err != nil {
				return Event{}, err
			}
		}
		if err := tx.Delete(secretKey(path)); err != nil {
			return Event{}, fmt.Errorf("delete %s: %w", path, err)
		}
		return Event{Path: path, Versions: ns}, nil
	})
	return err
}

// SetStage labels a version with stage. Version 0 removes the label (not
// allowed for current). Labelling a version current moves previous along.
func (s *Store) SetStage(ctx context.Context, c Call, path string, stage secret.Stage, version int) error {
	if err := secret.ValidatePath(path); err != nil {
		return err
	}
	if _, err := secret.ParseStage(string(stage)); err != nil {
		return err
	}
	if version < 0 || version == 0 && stage == secret.StageCurrent {
		return fmt.Errorf("%w: stage %s needs a version", secret.ErrInvalidArgument, stage)
	}
	_, err := s.mutate(ctx, c, func(tx Tx) (Event, error) {
		r, err := s.loadAllowed(tx, c, path)
		if err != nil {
			return Event{}, err
		}
		if version != 0 {
			if _, err := usable(r, path, version); err != nil {
				return Event{}, err
			}
		}
		if stage == secret.StageCurrent {
			r.moveCurrent(version)
		} else {
			if version != 0 && r.Stages[secret.StageCurrent] == version {
				return Event{}, fmt.Errorf("%w: %s v%d is current; it cannot also be %s", secret.ErrPrecondition, path, version, stage)
			}
			r.setStage(stage, version)
		}
		r.Meta.UpdatedAt, r.Meta.UpdatedBy = s.now().UTC(), c.Actor
		if err := s.saveRecord(tx, path, r); err != nil {
			return Event{}, err
		}
		return Event{Path: path, Versions: []int{version}}, nil
	})
	return err
}

// UpdateMetadata changes a secret's metadata.
func (s *Store) UpdateMetadata(ctx context.Context, c Call, path string, u secret.MetadataUpdate) (secret.Metadata, error) {
	if err := secret.ValidatePath(path); err != nil {
		return secret.Metadata{}, err
	}
	var out secret.Metadata
	_, err := s.mutate(ctx, c, func(tx Tx) (Event, error) {
		r, err := s.loadAllowed(tx, c, path)
		if errors.Is(err, secret.ErrNotFound) && u.Create {
			r, err = &record{}, nil
			r.Meta.CreatedAt, r.Meta.CreatedBy = s.now().UTC(), c.Actor
		}
		if err != nil {
			return Event{}, err
		}
		if err := applyMetadata(&r.Meta, u); err != nil {
			return Event{}, err
		}
		r.Meta.UpdatedAt, r.Meta.UpdatedBy = s.now().UTC(), c.Actor
		if err := s.prune(tx, r, path); err != nil {
			return Event{}, err
		}
		if err := s.saveRecord(tx, path, r); err != nil {
			return Event{}, err
		}
		out = r.Meta
		return Event{Path: path}, nil
	})
	return out, err
}
