// Package core is passman's in-process implementation of passman.Service:
// the secret store, the keyring and the audit log wired together, with every
// operation audited and failing closed when its audit entry cannot be
// written.
package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// File names inside a store directory.
const (
	DBFile    = "passman.db"
	AuditFile = "audit.log"
	KeyFile   = "master.key"
)

// auditHeadMeta names the store metadata record holding the audit chain
// head, which is what makes truncating the audit log detectable.
const auditHeadMeta = "audit-head"

// Options locate and configure a store.
type Options struct {
	// Dir is the store directory (database and audit log).
	Dir string
	// KeyFile is the master key file; "" means Dir/master.key. Ignored when
	// Keyring is set.
	KeyFile string
	// Keyring, when set, supplies the master keys (from PASSMAN_MASTER_KEY).
	Keyring *keyring.Keyring
	// Actor is recorded as the author of changes and in audit entries.
	Actor string
	// AuditSync says when an audit entry counts as written.
	AuditSync audit.SyncMode
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NoSync turns off the database's fsync: for benchmarks only.
	NoSync bool
	// Authorizer decides every operation; nil means a policy engine with
	// the bundled policies plus those in PolicyDir.
	Authorizer Authorizer
	// PolicyDir holds the user's Rego policies ("" = bundled only).
	PolicyDir string
}

func (o Options) keyFile() string {
	if o.KeyFile != "" {
		return o.KeyFile
	}
	return filepath.Join(o.Dir, KeyFile)
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// auditLog is what Local needs of the audit log; tests wrap it to make
// appends fail.
type auditLog interface {
	Append(ctx context.Context, e audit.Entry) (audit.Entry, error)
	AppendDeferred(ctx context.Context, e audit.Entry) (audit.Entry, error)
	Sync() error
	Head() audit.Head
	Path() string
	Close() error
}

// Local is the in-process Service over a store directory.
type Local struct {
	st   *store.Store
	db   *boltdb.DB
	log  auditLog
	kr   *keyring.Keyring
	opts Options
	// keyFile is where the keyring came from; "" for keys from the
	// environment, which passman cannot rotate.
	keyFile string
	authz   Authorizer
	// createdBy is the store's creator, whom the bundled policy makes admin.
	createdBy string
	tokens    tokenCache
}

var _ passman.Service = (*Local)(nil)

// InitResult reports what Init created.
type InitResult struct {
	Dir     string `json:"dir"`
	KeyFile string `json:"key_file,omitempty"`
	KeyID   string `json:"key_id"`
	StoreID string `json:"store_id"`
}

// Init creates a store in opts.Dir: the database, the audit log and, unless
// opts.Keyring is set, a new master key file (mode 0600). It refuses to
// touch an existing store or key file.
func Init(ctx context.Context, opts Options) (InitResult, error) {
	res := InitResult{Dir: opts.Dir}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return res, fmt.Errorf("create store directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, DBFile)); err == nil {
		return res, fmt.Errorf("%w: %s already holds a store", secret.ErrPrecondition, opts.Dir)
	}
	kr := opts.Keyring
	if kr == nil {
		kf := opts.keyFile()
		if _, err := os.Stat(kf); err == nil {
			return res, fmt.Errorf("%w: key file %s already exists; remove it or choose another with --key-file", secret.ErrPrecondition, kf)
		}
		var err error
		if kr, err = keyring.New(opts.now()); err != nil {
			return res, err
		}
		if err := kr.SaveFile(kf); err != nil {
			return res, err
		}
		res.KeyFile = kf
	}
	res.KeyID = kr.Active()
	db, err := boltdb.Open(ctx, filepath.Join(opts.Dir, DBFile), boltdb.Options{NoSync: opts.NoSync})
	if err != nil {
		return res, err
	}
	err = store.Init(ctx, db, kr, opts.Actor, store.Options{Now: opts.Now})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	opts.Keyring = kr
	l, err := Open(ctx, opts)
	if err != nil {
		return res, err
	}
	info, err := l.st.Info(ctx)
	res.StoreID = info.ID
	err = errors.Join(err, l.record(ctx, audit.Entry{Action: "store.init", Details: map[string]string{"key_id": kr.Active()}}, err))
	return res, errors.Join(err, l.Close())
}

// Open opens the store in opts.Dir. It fails, changing nothing, if the
// master key does not match or the audit log is shorter than the head the
// store recorded (truncated).
func Open(ctx context.Context, opts Options) (*Local, error) {
	if _, err := os.Stat(filepath.Join(opts.Dir, DBFile)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no store in %s; run 'passman init' or set --store", secret.ErrNotFound, opts.Dir)
	}
	kr, keyFile := opts.Keyring, ""
	if kr == nil {
		keyFile = opts.keyFile()
		var err error
		if kr, err = keyring.LoadFile(keyFile); err != nil {
			return nil, err
		}
	}
	db, err := boltdb.Open(ctx, filepath.Join(opts.Dir, DBFile), boltdb.Options{NoSync: opts.NoSync})
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, db, kr, store.Options{Now: opts.Now})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	authz := opts.Authorizer
	if authz == nil {
		if authz, err = policy.New(ctx, policy.Options{Dir: opts.PolicyDir}); err != nil {
			return nil, errors.Join(fmt.Errorf("load policies: %w", err), db.Close())
		}
	}
	// A missing log is evidence, not a fresh start: audit.Open would create
	// an empty one, so refuse first when the store has recorded entries.
	logPath := filepath.Join(opts.Dir, AuditFile)
	if _, serr := os.Stat(logPath); errors.Is(serr, os.ErrNotExist) {
		if h, err := readAuditHead(ctx, st); err != nil || h.Seq > 0 {
			return nil, errors.Join(fmt.Errorf("%w: audit log %s is missing but the store recorded %d entries; run 'passman audit verify'", secret.ErrTampered, logPath, h.Seq), err, db.Close())
		}
	}
	log, err := audit.Open(ctx, logPath, audit.Options{Sync: opts.AuditSync, Now: opts.Now})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	l := &Local{st: st, db: db, log: log, kr: kr, opts: opts, keyFile: keyFile, authz: authz, createdBy: info.CreatedBy}
	if err := l.reconcile(ctx); err != nil {
		return nil, errors.Join(err, log.Close(), db.Close())
	}
	if err := l.migrateTokenIndex(ctx); err != nil {
		return nil, errors.Join(err, log.Close(), db.Close())
	}
	return l, nil
}

// reconcile compares the audit log's head with the one the store recorded.
// A log behind the store was truncated: refuse to go on. A log ahead of it
// holds entries written just before a crash, before the store recorded them
// (reads record the head lazily, see Close): say so in the log, then record
// the head.
func (l *Local) reconcile(ctx context.Context) error {
	anchor, err := l.auditHead(ctx)
	if err != nil {
		return err
	}
	head := l.log.Head()
	switch {
	case head.Seq < anchor.Seq:
		return fmt.Errorf("%w: audit log %s ends at entry %d but the store recorded entry %d (truncated); run 'passman audit verify'", secret.ErrTampered, l.log.Path(), head.Seq, anchor.Seq)
	case head.Seq == anchor.Seq && head.Hash != anchor.Hash:
		return fmt.Errorf("%w: audit log %s entry %d does not match the head the store recorded; run 'passman audit verify'", secret.ErrTampered, l.log.Path(), head.Seq)
	case head.Seq > anchor.Seq:
		// Before adopting the extra entries, check that they extend the
		// recorded chain: the chain hash is unkeyed, so anyone able to write
		// the file could otherwise re-chain a doctored log and have it
		// adopted here. This reads the whole log, but only after a crash.
		rep, err := audit.Verify(ctx, l.log.Path(), anchor)
		if err != nil {
			return fmt.Errorf("verify audit log: %w", err)
		}
		if !rep.OK {
			return fmt.Errorf("%w: audit log %s: entry %d: %s; run 'passman audit verify'", secret.ErrTampered, l.log.Path(), rep.Broken.Seq, rep.Broken.Reason)
		}
		details := map[string]string{"unconfirmed_from": fmt.Sprint(anchor.Seq + 1), "unconfirmed_to": fmt.Sprint(head.Seq)}
		if err := l.record(ctx, audit.Entry{Action: "audit.recover", Details: details}, nil); err != nil {
			return err
		}
		return l.checkpoint(ctx)
	}
	return nil
}

func (l *Local) auditHead(ctx context.Context) (audit.Head, error) {
	return readAuditHead(ctx, l.st)
}

type metaReader interface {
	Meta(ctx context.Context, name string) ([]byte, error)
}

func readAuditHead(ctx context.Context, st metaReader) (audit.Head, error) {
	var h audit.Head
	b, err := st.Meta(ctx, auditHeadMeta)
	if err != nil || b == nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%w: recorded audit head: %v", secret.ErrCorrupt, err)
	}
	return h, nil
}

// checkpoint records the audit log's current head in the store, never
// moving it backwards.
func (l *Local) checkpoint(ctx context.Context) error {
	head := l.log.Head()
	err := l.st.UpdateMeta(ctx, auditHeadMeta, func(old []byte) ([]byte, error) {
		var cur audit.Head
		if old != nil {
			if err := json.Unmarshal(old, &cur); err != nil {
				return nil, fmt.Errorf("%w: recorded audit head: %v", secret.ErrCorrupt, err)
			}
		}
		if cur.Seq >= head.Seq {
			return nil, nil
		}
		return json.Marshal(head)
	})
	if err != nil {
		return fmt.Errorf("record audit head: %w", err)
	}
	return nil
}

// Close records the audit head (for entries of reads and failures, which do
// not record it themselves) and releases the store.
func (l *Local) Close() error {
	err := l.checkpoint(context.Background())
	return errors.Join(err, l.log.Close(), l.db.Close())
}
