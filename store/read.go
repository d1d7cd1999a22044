package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
)

// loadRecord reads path's record. For a missing secret it returns an empty
// record together with an error wrapping secret.ErrNotFound, so a writer can
// create the secret from it.
func (s *Store) loadRecord(tx Tx, path string) (*record, error) {
	return s.readRecord(tx, path, decodeRecord)
}

// loadShared is loadRecord for a read that only looks: the record may
// come from the record cache and is shared, so it must not be modified.
func (s *Store) loadShared(tx Tx, path string) (*record, error) {
	return s.readRecord(tx, path, s.records.decode)
}

func (s *Store) readRecord(tx Tx, path string, decode func(string, []byte) (*record, error)) (*record, error) {
	b, err := tx.Get(secretKey(path))
	if errors.Is(err, ErrKeyNotFound) {
		return &record{}, fmt.Errorf("%w: secret %s does not exist", secret.ErrNotFound, path)
	}
	if err != nil {
		return nil, &readError{fmt.Errorf("read %s: %w", path, err)}
	}
	return decode(path, b)
}

// readError is a transaction's read that failed (the backend unreachable,
// say): not an outcome of the operation but of its attempt, which a
// recorded read runs again alone (GetRecorded).
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func (s *Store) saveRecord(tx Tx, path string, r *record) error {
	b, err := r.encode()
	if err != nil {
		return err
	}
	if err := tx.Put(secretKey(path), b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func decodeFP(h string) ([]byte, bool) {
	b, err := hex.DecodeString(h)
	return b, err == nil && len(b) == 32
}

// settledGetter is a transaction that can read a key whose change it
// need not check when it commits, because another of its reads does
// (store/etcd's, which otherwise compares every key read).
type settledGetter interface {
	GetSettled(key []byte) ([]byte, error)
}

// openValue decrypts version n of path inside tx, which has read path's
// record. A version's value changes meaning only with that record: it is
// written when the version is appended and deleted when it is dropped,
// both with the record (a re-wrap under a new master key changes its
// bytes, not its plaintext). So its read is settled by the record's.
func (s *Store) openValue(tx Tx, path string, n int) ([]byte, error) {
	get := tx.Get
	if sg, ok := tx.(settledGetter); ok {
		get = sg.GetSettled
	}
	sb, err := get(valueKey(path, n))
	if errors.Is(err, ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: value of %s v%d is missing", secret.ErrCorrupt, path, n)
	}
	if err != nil {
		return nil, &readError{fmt.Errorf("read %s v%d: %w", path, n, err)}
	}
	var sealed keyring.Sealed
	if err := sealed.UnmarshalBinary(sb); err != nil {
		return nil, fmt.Errorf("%s v%d: %w", path, n, err)
	}
	v, err := s.kr.Open(sealed, keyring.VersionAAD(path, n))
	if err != nil {
		return nil, fmt.Errorf("open %s v%d: %w", path, n, err)
	}
	return v, nil
}

// Get returns the selected version of path with its decrypted value.
func (s *Store) Get(ctx context.Context, path string, sel secret.Selector) (secret.Versioned, error) {
	return s.GetIf(ctx, path, sel, nil)
}

// GetIf is Get with a check between reading the secret's record and
// opening a value, in the same read transaction: allow sees the metadata
// (nil when the secret does not exist), and an error from it ends the read
// with that error before anything is decrypted. An authorized read needs
// the metadata for the policy and then the value; this way it reads and
// decodes the record once.
func (s *Store) GetIf(ctx context.Context, path string, sel secret.Selector, allow func(*secret.Metadata) error) (secret.Versioned, error) {
	if err := checkGet(path, sel); err != nil {
		return secret.Versioned{Path: path}, err
	}
	out := secret.Versioned{Path: path}
	err := s.b.View(ctx, func(tx Tx) error {
		var err error
		out, err = s.getIn(tx, path, sel, allow)
		return err
	})
	return out, err
}

// ReadCall carries what a recorded read (GetRecorded) needs from its
// caller.
type ReadCall struct {
	// Allow is GetIf's check.
	Allow func(*secret.Metadata) error
	// Record runs in the read's transaction once its outcome is known
	// (err nil: info was read), to stage the caller's writes (the read's
	// audit entry) in the same commit. An error from it ends the
	// transaction without committing and is GetRecorded's error. Like a
	// write's Commit it may run more than once for one read.
	Record func(tx Tx, info secret.VersionInfo, err error) error
}

// readBatcher is a backend that commits concurrent reads together, each
// verified by the commit (store/etcd's ReadBatch).
type readBatcher interface {
	ReadBatch(ctx context.Context, fn func(tx Tx) error) error
}

// GetRecorded is GetIf in a write transaction whose commit holds what
// c.Record stages: the read and its record commit together or not at all.
// On a backend whose commit verifies what a transaction read (store/etcd)
// that commit is also what makes the read linearizable, so a read costs
// no round of its own before it; concurrent recorded reads share one
// commit (ReadBatch). Every outcome is recorded, a refusal or a missing
// secret included, and returned as the error once the transaction
// committed; any other error means it did not (or may not have).
func (s *Store) GetRecorded(ctx context.Context, path string, sel secret.Selector, c ReadCall) (secret.Versioned, error) {
	if err := checkGet(path, sel); err != nil {
		return secret.Versioned{Path: path}, err
	}
	var out secret.Versioned
	var opErr error
	run := func(tx Tx) error {
		// A re-run (the shared commit conflicted) reads again.
		out.Value.Wipe()
		out, opErr = s.getIn(tx, path, sel, c.Allow)
		if _, failed := errors.AsType[*readError](opErr); failed {
			// This call's attempt failed, not the others' with it: a
			// group runs it again alone.
			return opErr
		}
		return c.Record(tx, out.Info, opErr)
	}
	// Waited for to the end even when ctx ends: run may still be running
	// in the group's commit, and what it sets is ours. A group commit takes
	// milliseconds, and its outcome is recorded either way.
	ctx = context.WithoutCancel(ctx)
	var err error
	if b, ok := s.b.(readBatcher); ok {
		err = b.ReadBatch(ctx, run)
	} else {
		err = s.batch(ctx, run)
	}
	if err == nil {
		err = opErr
	}
	if err != nil {
		out.Value.Wipe()
		return secret.Versioned{Path: path}, err
	}
	return out, nil
}

// checkGet refuses a read's arguments before any transaction.
func checkGet(path string, sel secret.Selector) error {
	if err := secret.ValidatePath(path); err != nil {
		return err
	}
	if sel.Version < 0 || sel.Version > 0 && sel.Stage != "" {
		return fmt.Errorf("%w: select a version or a stage, not both", secret.ErrInvalidArgument)
	}
	if sel.Stage != "" {
		if _, err := secret.ParseStage(string(sel.Stage)); err != nil {
			return err
		}
	}
	return nil
}

// getIn reads the selected version of path in tx (see GetIf).
func (s *Store) getIn(tx Tx, path string, sel secret.Selector, allow func(*secret.Metadata) error) (secret.Versioned, error) {
	out := secret.Versioned{Path: path}
	r, err := s.loadShared(tx, path)
	if r == nil {
		return out, err
	}
	if allow != nil {
		var md *secret.Metadata
		if err == nil {
			md = &r.Meta
		}
		if aerr := allow(md); aerr != nil {
			return out, aerr
		}
	}
	if err != nil {
		return out, err
	}
	n := sel.Version
	if n == 0 {
		st := sel.Stage
		if st == "" {
			st = secret.StageCurrent
		}
		if n = r.Stages[st]; n == 0 {
			return out, fmt.Errorf("%w: %s has no %s version", secret.ErrNotFound, path, st)
		}
	}
	v, err := usable(r, path, n)
	if err != nil {
		return out, err
	}
	value, err := s.openValue(tx, path, n)
	if err != nil {
		return out, err
	}
	out.Info = r.info(v)
	out.Value = secret.NewValue(value)
	return out, nil
}

// Describe returns path's metadata and version history.
func (s *Store) Describe(ctx context.Context, path string) (secret.Secret, error) {
	if err := secret.ValidatePath(path); err != nil {
		return secret.Secret{}, err
	}
	var out secret.Secret
	err := s.b.View(ctx, func(tx Tx) error {
		r, err := s.loadRecord(tx, path)
		if err != nil {
			return err
		}
		out = r.secret(path)
		return nil
	})
	return out, err
}

// Metadata returns a secret's metadata alone: what authorization reads
// before every operation on a secret, so it skips building the version
// history Describe returns.
func (s *Store) Metadata(ctx context.Context, path string) (secret.Metadata, error) {
	if err := secret.ValidatePath(path); err != nil {
		return secret.Metadata{}, err
	}
	var out secret.Metadata
	err := s.b.View(ctx, func(tx Tx) error {
		b, err := tx.Get(secretKey(path))
		if errors.Is(err, ErrKeyNotFound) {
			return fmt.Errorf("%w: secret %s does not exist", secret.ErrNotFound, path)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		var r struct {
			Meta secret.Metadata `json:"meta"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%w: record of %s: %v", secret.ErrCorrupt, path, err)
		}
		out = r.Meta
		return nil
	})
	return out, err
}

// List returns one page of secrets whose path starts with opts.Prefix,
// sorted by path.
func (s *Store) List(ctx context.Context, opts secret.ListOptions) (secret.ListPage, error) {
	var page secret.ListPage
	if err := secret.ValidatePrefix(opts.Prefix); err != nil {
		return page, err
	}
	if opts.After != "" {
		if err := secret.ValidatePath(opts.After); err != nil {
			return page, fmt.Errorf("cursor: %w", err)
		}
	}
	limit := opts.Limit
	switch {
	case limit < 0 || limit > secret.MaxListLimit:
		return page, fmt.Errorf("%w: limit %d out of range 1..%d", secret.ErrInvalidArgument, limit, secret.MaxListLimit)
	case limit == 0:
		limit = secret.DefaultListLimit
	}
	prefix := []byte(prefixSecret + opts.Prefix)
	var start []byte
	if opts.After != "" {
		// Start past the cursor's record and values: 0x02 sorts after both
		// and before any of its children.
		start = append([]byte(prefixSecret+opts.After), 0, 2)
	}
	page.Entries = []secret.ListEntry{}
	err := s.b.View(ctx, func(tx Tx) error {
		return tx.Scan(prefix, start, func(k, v []byte) (bool, error) {
			path, isRecord, ok := splitSecretKey(k)
			if !ok {
				return false, fmt.Errorf("%w: malformed key %q", secret.ErrCorrupt, k)
			}
			if !isRecord {
				return true, nil
			}
			if len(page.Entries) == limit {
				page.Next = page.Entries[limit-1].Path
				return false, nil
			}
			r, err := decodeRecord(path, v)
			if err != nil {
				return false, err
			}
			entry := secret.ListEntry{Path: path, CurrentVersion: r.Stages[secret.StageCurrent], Versions: len(r.Versions), Owner: r.Meta.Owner, UpdatedAt: r.Meta.UpdatedAt}
			if opts.WithMetadata {
				entry.Metadata = &r.Meta
			}
			page.Entries = append(page.Entries, entry)
			return true, nil
		})
	})
	return page, err
}

// LookupFingerprint returns every version whose value has fingerprint fp
// (lowercase hex), with its current stages. Nothing is decrypted.
func (s *Store) LookupFingerprint(ctx context.Context, fp string) ([]secret.FingerprintMatch, error) {
	raw, ok := decodeFP(fp)
	if !ok {
		return nil, fmt.Errorf("%w: fingerprint must be 64 hex characters", secret.ErrInvalidArgument)
	}
	return s.lookup(ctx, raw)
}

// LookupValue fingerprints value with the detection key and looks it up.
func (s *Store) LookupValue(ctx context.Context, value []byte) ([]secret.FingerprintMatch, error) {
	return s.lookup(ctx, s.det.Sum(value))
}

func (s *Store) lookup(ctx context.Context, raw []byte) ([]secret.FingerprintMatch, error) {
	var out []secret.FingerprintMatch
	prefix := append([]byte(prefixFP), raw...)
	err := s.b.View(ctx, func(tx Tx) error {
		return tx.Scan(prefix, nil, func(k, _ []byte) (bool, error) {
			path, n, ok := parseFPKey(k[len(prefix):])
			if !ok {
				return false, fmt.Errorf("%w: malformed index key", secret.ErrCorrupt)
			}
			r, err := s.loadRecord(tx, path)
			if errors.Is(err, secret.ErrNotFound) {
				return false, fmt.Errorf("%w: index names %s v%d, a secret that does not exist", secret.ErrCorrupt, path, n)
			}
			if err != nil {
				return false, fmt.Errorf("index names %s v%d: %w", path, n, err)
			}
			v := r.version(n)
			if v == nil {
				return false, fmt.Errorf("%w: index names %s v%d, which does not exist", secret.ErrCorrupt, path, n)
			}
			out = append(out, secret.FingerprintMatch{Path: path, Version: n, Stages: r.stagesOf(n), State: v.State})
			return true, nil
		})
	})
	return out, err
}
