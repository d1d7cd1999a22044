// Package core is passman's in-process implementation of passman.Service:
// the secret store, the keyring and the audit log wired together, with every
// operation audited and failing closed when its audit entry cannot be
// written.
package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/passman-dev/passman"
	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/metrics"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
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
// head, which is what makes truncating the audit log detectable: an
// audit.Checkpoint, signed (see checkpoint.go).
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
	// Connectors are the rotation connectors connections may use; nil
	// means the built-in ones without exec (rotation.Connectors).
	Connectors rotation.Registry
	// Getenv resolves connections' env:NAME credential references; nil
	// resolves none.
	Getenv func(string) string
	// Metrics counts rotations (attempts, outcomes, stale secrets); nil
	// counts nothing.
	Metrics *metrics.Metrics
	// PolicyCheckInterval is how often, at most, authorization reads the
	// store's policy generation to see whether another process changed
	// the stored policy modules; 0 means DefaultPolicyCheckInterval, a
	// negative value every decision.
	PolicyCheckInterval time.Duration
	// CheckpointInterval is how often the audit head is recorded when only
	// reads and failures moved it; 0 means DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Backend, when set, holds the store instead of the bbolt file in Dir:
	// an etcd cluster that several servers share (see cluster.go). Dir
	// then holds only this server's audit log (and key file). Local closes
	// it.
	Backend store.Backend
	// ServerID names this server among those sharing Backend: its audit
	// chain is its own (one chain per server, so that servers never
	// serialise on one head), recorded and replicated in the store under
	// this name. Required with Backend; ignored without.
	ServerID string
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
	st *store.Store
	db store.Backend
	// bolt is db when it is the bbolt file (compaction needs it); nil on
	// a shared backend.
	bolt *boltdb.DB
	// headName is the metadata record of this log's chain head.
	headName string
	// cluster is the shared-backend machinery; nil on bbolt.
	cluster *clusterState
	log     auditLog
	kr      *keyring.Keyring
	opts    Options
	// keyFile is where the keyring came from; "" for keys from the
	// environment, which passman cannot rotate.
	keyFile string
	authz   Authorizer
	// createdBy is the store's creator, whom the bundled policy makes admin.
	createdBy string
	tokens    tokenCache
	ck        checkpointer
	pol       policyState
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
	if _, err := os.Stat(filepath.Join(opts.Dir, DBFile)); err == nil && opts.Backend == nil {
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
	if opts.Backend != nil {
		if err := checkCluster(opts); err != nil {
			return res, err
		}
		if err := store.Init(ctx, opts.Backend, kr, opts.Actor, store.Options{Now: opts.Now}); err != nil {
			return res, err
		}
	} else {
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
// master key does not match, the audit log is shorter than the head the
// store recorded (truncated), or that head's signature does not verify. It
// starts the checkpointer, which Close stops.
func Open(ctx context.Context, opts Options) (*Local, error) {
	if opts.Backend != nil {
		if err := checkCluster(opts); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("create server directory: %w", err)
		}
	} else if _, err := os.Stat(filepath.Join(opts.Dir, DBFile)); errors.Is(err, os.ErrNotExist) {
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
	var db store.Backend
	var bolt *boltdb.DB
	if opts.Backend != nil {
		db = opts.Backend
	} else {
		var err error
		if bolt, err = boltdb.Open(ctx, filepath.Join(opts.Dir, DBFile), boltdb.Options{NoSync: opts.NoSync}); err != nil {
			return nil, err
		}
		db = bolt
	}
	headName := headMetaName(opts)
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
		if h, err := readCheckpoint(ctx, st, headName); err != nil || h.Seq > 0 {
			hint := "run 'passman audit verify'"
			if opts.Backend != nil {
				// A cluster's store holds a copy of the chain.
				hint = "recover it from the store with 'passman audit recover' or give this server a new id"
			}
			return nil, errors.Join(fmt.Errorf("%w: audit log %s is missing but the store recorded %d entries; %s", secret.ErrTampered, logPath, h.Seq, hint), err, db.Close())
		}
	}
	alog, err := audit.Open(ctx, logPath, audit.Options{Sync: opts.AuditSync, Now: opts.Now})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	var log auditLog = alog
	l := &Local{st: st, db: db, bolt: bolt, headName: headName, kr: kr, opts: opts, keyFile: keyFile, authz: authz, createdBy: info.CreatedBy}
	if opts.Backend != nil {
		if log, err = l.startCluster(ctx, alog); err != nil {
			return nil, errors.Join(err, alog.Close(), db.Close())
		}
	}
	l.log = log
	if err := l.reconcile(ctx); err != nil {
		return nil, errors.Join(err, l.stopCluster(), log.Close(), db.Close())
	}
	if err := l.migrateTokenIndex(ctx); err != nil {
		return nil, errors.Join(err, l.stopCluster(), log.Close(), db.Close())
	}
	if err := l.loadPolicies(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("load the store's policies: %w", err), log.Close(), db.Close())
	}
	l.startCheckpoints(opts.checkpointInterval())
	return l, nil
}

// reconcile compares the audit log's head with the checkpoint the store
// recorded, after checking its signature. A log behind the checkpoint was
// truncated: refuse to go on. A log ahead of it holds entries written just
// before a crash, within the checkpoint window: say so in the log. Then
// record the head, signed with the active key.
func (l *Local) reconcile(ctx context.Context) error {
	cp, err := readCheckpoint(ctx, l.st, l.headName)
	if err != nil {
		return err
	}
	if err := l.checkRecordedSignature(cp); err != nil {
		return err
	}
	anchor, head := cp.Head, l.log.Head()
	verified := false
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
		if err := l.verifyLog(ctx, anchor); err != nil {
			return err
		}
		verified = true
		details := map[string]string{"unconfirmed_from": fmt.Sprint(anchor.Seq + 1), "unconfirmed_to": fmt.Sprint(head.Seq)}
		if err := l.record(ctx, audit.Entry{Action: "audit.recover", Details: details}, nil); err != nil {
			return err
		}
	}
	if anchor.Seq > 0 && !cp.Signed() {
		// A head recorded before checkpoints were signed is about to be
		// vouched for: check the chain up to it first (once per store),
		// and say in the log where signing began.
		if !verified {
			if err := l.verifyLog(ctx, anchor); err != nil {
				return err
			}
		}
		details := map[string]string{"unsigned_seq": fmt.Sprint(anchor.Seq), "key_id": l.kr.Active()}
		if err := l.record(ctx, audit.Entry{Action: "audit.sign", Details: details}, nil); err != nil {
			return err
		}
	}
	return l.checkpoint(ctx)
}

// verifyLog checks the whole log against anchor, for reconcile.
func (l *Local) verifyLog(ctx context.Context, anchor audit.Head) error {
	rep, err := audit.Verify(ctx, l.log.Path(), anchor)
	if err != nil {
		return fmt.Errorf("verify audit log: %w", err)
	}
	if !rep.OK {
		return fmt.Errorf("%w: audit log %s: entry %d: %s; run 'passman audit verify'", secret.ErrTampered, l.log.Path(), rep.Broken.Seq, rep.Broken.Reason)
	}
	return nil
}

type metaReader interface {
	Meta(ctx context.Context, name string) ([]byte, error)
}

// Close stops the checkpointer, records the audit head (for entries of
// reads and failures since its last tick) and releases the store.
func (l *Local) Close() error {
	l.stopCheckpoints()
	err := l.checkpoint(context.Background())
	l.forgetKeys()
	return errors.Join(err, l.stopCluster(), l.log.Close(), l.db.Close())
}
