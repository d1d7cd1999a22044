package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/boltdb"
)

// Audit action names, one per operation.
const (
	ActionPut       = "secret.put"
	ActionGet       = "secret.get"
	ActionDescribe  = "secret.describe"
	ActionList      = "secret.list"
	ActionRollback  = "secret.rollback"
	ActionDelete    = "secret.delete"
	ActionUndelete  = "secret.undelete"
	ActionDestroy   = "secret.destroy"
	ActionPurge     = "secret.purge"
	ActionMeta      = "secret.meta"
	ActionStage     = "secret.stage"
	ActionLookup    = "fingerprint.lookup"
	ActionVerify    = "audit.verify"
	ActionQuery     = "audit.query"
	ActionKeyRotate = "keys.rotate"
	ActionKeyRewrap = "keys.rewrap"
	ActionKeyList   = "keys.list"
)

// record appends one audit entry for an operation that ended with err (nil:
// success). The entry's outcome and error class come from err; the error's
// text is never logged, since a caller's message could quote input.
func (l *Local) record(ctx context.Context, e audit.Entry, opErr error) error {
	_, err := l.append(ctx, e, opErr, false)
	return err
}

// preCommitter is a backend transaction that runs callbacks just before it
// commits (store/boltdb's does; see its BeforeCommit).
type preCommitter interface {
	BeforeCommit(key string, fn func() error)
}

func (l *Local) append(ctx context.Context, e audit.Entry, opErr error, deferSync bool) (audit.Entry, error) {
	// A caller that gives up must not stop its operation being recorded.
	ctx = context.WithoutCancel(ctx)
	e = l.complete(ctx, e, opErr)
	appendFn := l.log.Append
	if deferSync {
		appendFn = l.log.AppendDeferred
	}
	written, err := appendFn(ctx, e)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("%w: %v", secret.ErrAudit, err)
	}
	return written, nil
}

// complete fills in what an entry says of its request and its outcome.
func (l *Local) complete(ctx context.Context, e audit.Entry, opErr error) audit.Entry {
	if e.RequestID == "" {
		e.RequestID = audit.RequestID(ctx)
	}
	if e.Actor == "" {
		sub := l.subject(ctx)
		e.Actor = sub.ID
		// A token or OIDC identity could share a name with an OS user:
		// say which kind acted.
		if sub.Kind != policy.KindUser {
			d := make(map[string]string, len(e.Details)+1)
			maps.Copy(d, e.Details)
			d["subject_kind"] = sub.Kind
			e.Details = d
		}
	}
	e.Outcome = audit.OutcomeSuccess
	if opErr != nil {
		e.Outcome = audit.OutcomeFailure
		if errors.Is(opErr, secret.ErrPermissionDenied) {
			e.Outcome = audit.OutcomeDenied
		}
		e.ErrorClass = secret.Class(opErr)
	}
	return e
}

// mutate runs a store mutation of a secret whose audit entry is appended,
// and the chain head recorded, in the store's transaction just before it
// commits: the change commits only if its entry was written. A denied or
// failed mutation, a failed commit included, is audited afterwards under
// the same request id.
//
// The policy decides inside the transaction (store.Call.Allow), on the
// metadata the change commits over: no read of it beforehand (on etcd a
// linearizable one per write), and no window in which its owner or tags
// could change between the decision and the commit. A mutation that fails
// before the policy saw the record (a value the store refuses, a record
// that cannot be read) asks the policy the way authorize does, so that a
// refused caller gets a denial, never an error that tells whether or how
// the secret exists. An op with authorizeFirst is authorized before, as
// other operations are.
func (l *Local) mutate(ctx context.Context, o op, run func(store.Call) error) error {
	var d decision
	var allow func(*secret.Metadata) error
	if o.authorizeFirst {
		dec, err := l.authorize(ctx, o)
		if err != nil {
			return err
		}
		d.set(dec, nil)
	} else {
		if err := validateOp(o); err != nil {
			return l.deny(ctx, o, nil, err)
		}
		// Not in the transaction, where decide runs: it reads the store.
		l.refreshPolicies(ctx)
		allow = l.allowInto(ctx, o, &d)
	}
	reqID := audit.RequestID(ctx)
	actor := l.subject(ctx).ID
	call := store.Call{Actor: actor, Allow: allow, Commit: func(tx store.Tx, ev store.Event) error {
		e := eventEntry(o.action, reqID, ev)
		e.Decision, _ = d.get()
		if len(o.details) > 0 {
			if e.Details == nil {
				e.Details = map[string]string{}
			}
			maps.Copy(e.Details, o.details)
		}
		pc, ok := tx.(preCommitter)
		if !ok {
			return l.appendChange(ctx, tx, e, false)
		}
		// The entry is written once the whole (possibly batched)
		// transaction is known to commit, so a batched call that is rolled
		// back and re-run leaves no entry behind; the entries of one batch
		// share one fsync, registered under one key to run after the last.
		pc.BeforeCommit("", func() error { return l.appendChange(ctx, tx, e, true) })
		pc.BeforeCommit("audit-sync", l.syncFor(tx))
		return nil
	}}
	err := run(call)
	dec, refused := d.get()
	switch {
	case refused != nil:
		return l.deny(ctx, o, dec, refused)
	case dec == nil:
		if dec, refused = l.authorize(ctx, o); refused != nil {
			return refused
		}
	}
	if err != nil && !errors.Is(err, secret.ErrAudit) {
		if aerr := l.record(ctx, audit.Entry{Action: o.action, Path: auditPath(o.path), RequestID: reqID, Decision: dec, Details: o.details}, err); aerr != nil {
			return errors.Join(err, aerr)
		}
	}
	return err
}

// decision is the policy's last decision on a mutation, taken in its
// transaction: a batching backend may run the transaction on another
// goroutine, more than once, and still run it after a caller that gave up
// has stopped waiting.
type decision struct {
	mu      sync.Mutex
	dec     *audit.Decision
	refused error
}

func (d *decision) set(dec *audit.Decision, refused error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dec, d.refused = dec, refused
}

func (d *decision) get() (*audit.Decision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dec, d.refused
}

// allowInto is the Allow of o's store call: the policy decides on the
// record the transaction read, and d keeps the decision. It decides
// without the caller's cancellation: a group commit may go on after the
// caller gave up, and a caller that left is not a policy's refusal.
func (l *Local) allowInto(ctx context.Context, o op, d *decision) func(*secret.Metadata) error {
	ctx = context.WithoutCancel(ctx)
	return func(md *secret.Metadata) error {
		dec, err := l.decide(ctx, o, md)
		d.set(dec, err)
		return err
	}
}

// appendChange appends a change's entry and records it as the chain head
// in the change's transaction (unless a later entry is recorded already:
// concurrent reads may have moved the head on).
//
// On a cluster the entry is sealed into a reservation of the chain's tip
// and written to the log only if the transaction commits: an etcd commit
// can fail on a conflict with another server and run again, and the
// failed attempt must leave no entry (see replicatedLog.seal).
func (l *Local) appendChange(ctx context.Context, tx store.Tx, e audit.Entry, deferSync bool) error {
	if ac, ok := tx.(afterCommitter); ok && l.cluster != nil {
		written, err := l.cluster.repl.seal(context.WithoutCancel(ctx), tx, ac, l.complete(context.WithoutCancel(ctx), e, nil))
		if err != nil {
			return err
		}
		// The reservation holds the chain's tip, so no head recorded can
		// be later than this entry (the checkpointer records only entries
		// in the log, and compares before it writes). Written without
		// reading it: the server's consecutive commits do not conflict
		// over it.
		head, err := l.signedHead(audit.Head{Seq: written.Seq, Hash: written.Hash})
		if err != nil {
			return err
		}
		return store.PutMeta(tx, l.headName, head)
	}
	written, err := l.append(ctx, e, nil, deferSync)
	if err != nil {
		return err
	}
	cur, err := store.MetaTx(tx, l.headName)
	if err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	if cur != nil {
		c, err := audit.ParseCheckpoint(cur)
		if err != nil {
			return err
		}
		if c.Seq >= written.Seq {
			return nil
		}
	}
	head, err := l.signedHead(audit.Head{Seq: written.Seq, Hash: written.Hash})
	if err != nil {
		return err
	}
	return store.PutMeta(tx, l.headName, head)
}

// auditPath is the path an entry records: only a valid one. An invalid path
// may be anything the caller typed, a value pasted in the wrong place
// included, and the audit log holds no values.
func auditPath(p string) string {
	if secret.ValidatePath(p) != nil {
		return ""
	}
	return p
}

func eventEntry(action, reqID string, ev store.Event) audit.Entry {
	e := audit.Entry{Action: action, RequestID: reqID, Path: ev.Path, Fingerprint: ev.Fingerprint}
	switch len(ev.Versions) {
	case 0:
	case 1:
		e.Version = ev.Versions[0]
	default:
		e.Version = ev.Versions[len(ev.Versions)-1]
		e.Details = map[string]string{"versions": joinInts(ev.Versions)}
	}
	return e
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// read audits a read-only operation. The entry is written before the result
// is returned; if it cannot be, the caller gets no result (fail closed).
func (l *Local) read(ctx context.Context, e audit.Entry, opErr error) error {
	if aerr := l.record(ctx, e, opErr); aerr != nil {
		return errors.Join(opErr, aerr)
	}
	return opErr
}

// VerifyAudit checks the audit log at path against the checkpoint recorded
// in st. With st's keyring (a store opened with its master key) it also
// checks the checkpoint's signature; without one (VerifyDir) it checks the
// chain alone, so a store whose key is lost can still be audited, and the
// report says the signature was not checked. A chain or signature that does
// not verify is reported in the Report and as an error wrapping
// secret.ErrTampered.
func VerifyAudit(ctx context.Context, st checkpointSource, path string) (audit.Report, error) {
	return verifyChain(ctx, st, auditHeadMeta, func(anchor audit.Head) (audit.Report, error) {
		return audit.Verify(ctx, path, anchor)
	})
}

// verifyChain checks one chain, read by verify, against the checkpoint
// recorded under headName.
func verifyChain(ctx context.Context, st checkpointSource, headName string, verify func(anchor audit.Head) (audit.Report, error)) (audit.Report, error) {
	cp, err := readCheckpoint(ctx, st, headName)
	if err != nil {
		return audit.Report{}, err
	}
	rep, err := verify(cp.Head)
	if err != nil {
		return rep, err
	}
	if err := judgeSignature(ctx, st, cp, &rep); err != nil {
		return rep, err
	}
	if !rep.OK {
		return rep, fmt.Errorf("%w: entry %d: %s", secret.ErrTampered, rep.Broken.Seq, rep.Broken.Reason)
	}
	return rep, nil
}

// VerifyDir verifies the audit log of the store in dir without a master key
// and without writing anything, so a damaged or tampered store can still be
// examined. The checkpoint's signature is not checked.
func VerifyDir(ctx context.Context, dir string) (audit.Report, error) {
	return VerifyDirWithKeyring(ctx, dir, nil)
}

// VerifyDirWithKeyring is VerifyDir that also checks the checkpoint's
// signature with kr (nil: VerifyDir). It opens nothing with the keys and
// writes nothing. A keyring that holds none of the store's keys cannot check
// the signature; the report then warns, as without a key.
func VerifyDirWithKeyring(ctx context.Context, dir string, kr *keyring.Keyring) (audit.Report, error) {
	if _, err := os.Stat(filepath.Join(dir, DBFile)); errors.Is(err, os.ErrNotExist) {
		return audit.Report{}, fmt.Errorf("%w: no store in %s", secret.ErrNotFound, dir)
	}
	db, err := boltdb.Open(ctx, filepath.Join(dir, DBFile), boltdb.Options{ReadOnly: true})
	if err != nil {
		return audit.Report{}, err
	}
	defer db.Close()
	return VerifyAudit(ctx, rawMeta{db, kr}, filepath.Join(dir, AuditFile))
}

// rawMeta reads store metadata from a backend opened without the store's
// keyring; kr, if not nil, only checks signatures.
type rawMeta struct {
	b  store.Backend
	kr *keyring.Keyring
}

func (r rawMeta) Meta(ctx context.Context, name string) ([]byte, error) {
	return store.ReadMeta(ctx, r.b, name)
}

func (r rawMeta) Info(ctx context.Context) (store.Info, error) {
	return store.ReadInfo(ctx, r.b)
}

func (r rawMeta) Keyring() *keyring.Keyring { return r.kr }

// changeRecords authorizes o, then runs fn as commitRecords does.
func (l *Local) changeRecords(ctx context.Context, o op, fn func(tx store.Tx) error, committed func()) error {
	dec, err := l.authorize(ctx, o)
	if err != nil {
		return err
	}
	return l.commitRecords(ctx, o, dec, fn, committed)
}

// commitRecords runs fn, authorized by dec, in a database transaction
// over the store's own records (tokens, connections) whose audit entry is
// appended, and the chain head recorded, just before it commits, as mutate
// does for secrets: a token or a connection exists only if its creation
// was audited. A failure is audited under the same request id.
func (l *Local) commitRecords(ctx context.Context, o op, dec *audit.Decision, fn func(tx store.Tx) error, committed func()) error {
	reqID := audit.RequestID(ctx)
	entry := func() audit.Entry {
		// o.details is read when the entry is written: fn may add to it
		// (the accessor of a new token).
		return audit.Entry{Action: o.action, RequestID: reqID, Decision: dec, Details: maps.Clone(o.details)}
	}
	err := l.update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		pc, ok := tx.(preCommitter)
		if !ok {
			return l.appendChange(ctx, tx, entry(), false)
		}
		pc.BeforeCommit("", func() error { return l.appendChange(ctx, tx, entry(), true) })
		pc.BeforeCommit("audit-sync", l.syncFor(tx))
		return nil
	})
	if err == nil && committed != nil {
		committed()
	}
	if err != nil && !errors.Is(err, secret.ErrAudit) {
		if aerr := l.record(ctx, entry(), err); aerr != nil {
			return errors.Join(err, aerr)
		}
	}
	return err
}
