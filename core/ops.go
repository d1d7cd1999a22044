package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/passman-dev/passman/audit"
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
)

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// record appends one audit entry for an operation that ended with err (nil:
// success). The entry's outcome and error class come from err; the error's
// text is never logged, since a caller's message could quote input.
func (l *Local) record(ctx context.Context, e audit.Entry, opErr error) error {
	return l.append(ctx, e, opErr, false)
}

// preCommitter is a backend transaction that runs callbacks just before it
// commits (store/boltdb's does; see its BeforeCommit).
type preCommitter interface {
	BeforeCommit(key string, fn func() error)
}

func (l *Local) append(ctx context.Context, e audit.Entry, opErr error, deferSync bool) error {
	// A caller that gives up must not stop its operation being recorded.
	ctx = context.WithoutCancel(ctx)
	if e.RequestID == "" {
		e.RequestID = newRequestID()
	}
	e.Actor = l.opts.Actor
	e.Outcome = audit.OutcomeSuccess
	if opErr != nil {
		e.Outcome = audit.OutcomeFailure
		if errors.Is(opErr, secret.ErrPermissionDenied) {
			e.Outcome = audit.OutcomeDenied
		}
		e.ErrorClass = secret.Class(opErr)
	}
	appendFn := l.log.Append
	if deferSync {
		appendFn = l.log.AppendDeferred
	}
	if _, err := appendFn(ctx, e); err != nil {
		return fmt.Errorf("%w: %v", secret.ErrAudit, err)
	}
	return nil
}

// mutate runs a store mutation whose audit entry is appended, and the chain
// head recorded, in the store's transaction just before it commits: the
// change commits only if its entry was written. A failed mutation, a failed
// commit included, is audited afterwards under the same request id.
func (l *Local) mutate(ctx context.Context, action, path string, run func(store.Call) error) error {
	reqID := newRequestID()
	call := store.Call{Actor: l.opts.Actor, Commit: func(tx store.Tx, ev store.Event) error {
		e := eventEntry(action, reqID, ev)
		pc, ok := tx.(preCommitter)
		if !ok {
			return l.appendChange(ctx, tx, e, false)
		}
		// The entry is written once the whole (possibly batched)
		// transaction is known to commit, so a batched call that is rolled
		// back and re-run leaves no entry behind; the entries of one batch
		// share one fsync, registered under one key to run after the last.
		pc.BeforeCommit("", func() error { return l.appendChange(ctx, tx, e, true) })
		pc.BeforeCommit("audit-sync", l.log.Sync)
		return nil
	}}
	err := run(call)
	if err != nil && !errors.Is(err, secret.ErrAudit) {
		if aerr := l.record(ctx, audit.Entry{Action: action, Path: auditPath(path), RequestID: reqID}, err); aerr != nil {
			return errors.Join(err, aerr)
		}
	}
	return err
}

// appendChange appends a change's entry and records the new chain head in
// the change's transaction.
func (l *Local) appendChange(ctx context.Context, tx store.Tx, e audit.Entry, deferSync bool) error {
	if err := l.append(ctx, e, nil, deferSync); err != nil {
		return err
	}
	head, err := json.Marshal(l.log.Head())
	if err != nil {
		return fmt.Errorf("encode audit head: %w", err)
	}
	return store.PutMeta(tx, auditHeadMeta, head)
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

// Put implements passman.Service.
func (l *Local) Put(ctx context.Context, path string, value secret.Value, opts secret.PutOptions) (secret.VersionInfo, error) {
	var info secret.VersionInfo
	err := l.mutate(ctx, ActionPut, path, func(c store.Call) error {
		var err error
		info, err = l.st.Put(ctx, c, path, value.Reveal(), opts)
		return err
	})
	return info, err
}

// Get implements passman.Service.
func (l *Local) Get(ctx context.Context, path string, sel secret.Selector) (secret.Versioned, error) {
	v, err := l.st.Get(ctx, path, sel)
	e := audit.Entry{Action: ActionGet, Path: auditPath(path), Version: v.Info.Version, Fingerprint: v.Info.Fingerprint}
	if sel.Stage != "" {
		e.Details = map[string]string{"stage": string(sel.Stage)}
	}
	if err := l.read(ctx, e, err); err != nil {
		v.Value.Wipe()
		return secret.Versioned{Path: path}, err
	}
	return v, nil
}

// Describe implements passman.Service.
func (l *Local) Describe(ctx context.Context, path string) (secret.Secret, error) {
	s, err := l.st.Describe(ctx, path)
	if err := l.read(ctx, audit.Entry{Action: ActionDescribe, Path: auditPath(path)}, err); err != nil {
		return secret.Secret{}, err
	}
	return s, nil
}

// List implements passman.Service.
func (l *Local) List(ctx context.Context, opts secret.ListOptions) (secret.ListPage, error) {
	p, err := l.st.List(ctx, opts)
	e := audit.Entry{Action: ActionList, Details: map[string]string{"count": strconv.Itoa(len(p.Entries))}}
	if secret.ValidatePrefix(opts.Prefix) == nil {
		e.Details["prefix"] = opts.Prefix
	}
	if err := l.read(ctx, e, err); err != nil {
		return secret.ListPage{}, err
	}
	return p, nil
}

// Rollback implements passman.Service.
func (l *Local) Rollback(ctx context.Context, path string, version int) (secret.VersionInfo, error) {
	var info secret.VersionInfo
	err := l.mutate(ctx, ActionRollback, path, func(c store.Call) error {
		var err error
		info, err = l.st.Rollback(ctx, c, path, version)
		return err
	})
	return info, err
}

// Delete implements passman.Service.
func (l *Local) Delete(ctx context.Context, path string, versions []int) error {
	return l.mutate(ctx, ActionDelete, path, func(c store.Call) error { return l.st.Delete(ctx, c, path, versions) })
}

// Undelete implements passman.Service.
func (l *Local) Undelete(ctx context.Context, path string, versions []int) error {
	return l.mutate(ctx, ActionUndelete, path, func(c store.Call) error { return l.st.Undelete(ctx, c, path, versions) })
}

// Destroy implements passman.Service.
func (l *Local) Destroy(ctx context.Context, path string, versions []int) error {
	return l.mutate(ctx, ActionDestroy, path, func(c store.Call) error { return l.st.Destroy(ctx, c, path, versions) })
}

// Purge implements passman.Service.
func (l *Local) Purge(ctx context.Context, path string) error {
	return l.mutate(ctx, ActionPurge, path, func(c store.Call) error { return l.st.Purge(ctx, c, path) })
}

// UpdateMetadata implements passman.Service.
func (l *Local) UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error) {
	var m secret.Metadata
	err := l.mutate(ctx, ActionMeta, path, func(c store.Call) error {
		var err error
		m, err = l.st.UpdateMetadata(ctx, c, path, u)
		return err
	})
	return m, err
}

// SetStage implements passman.Service.
func (l *Local) SetStage(ctx context.Context, path string, stage secret.Stage, version int) error {
	return l.mutate(ctx, ActionStage, path, func(c store.Call) error { return l.st.SetStage(ctx, c, path, stage, version) })
}

// LookupFingerprint implements passman.Service.
func (l *Local) LookupFingerprint(ctx context.Context, fp string) ([]secret.FingerprintMatch, error) {
	m, err := l.st.LookupFingerprint(ctx, fp)
	e := audit.Entry{Action: ActionLookup, Details: map[string]string{"matches": strconv.Itoa(len(m))}}
	if err == nil {
		e.Fingerprint = fp
	}
	if err := l.read(ctx, e, err); err != nil {
		return nil, err
	}
	return m, nil
}

// VerifyAudit implements passman.Service. It records the head first, so
// entries of this session's reads are covered.
func (l *Local) VerifyAudit(ctx context.Context) (audit.Report, error) {
	if err := l.checkpoint(ctx); err != nil {
		return audit.Report{}, err
	}
	rep, err := VerifyAudit(ctx, l.st, l.log.Path())
	if aerr := l.record(ctx, audit.Entry{Action: ActionVerify, Details: map[string]string{"entries": strconv.FormatUint(rep.Entries, 10)}}, err); aerr != nil && !errors.Is(err, secret.ErrTampered) {
		return rep, aerr
	}
	return rep, err
}

// VerifyAudit checks the audit log at path against the head recorded in st.
// It needs no master key, so a store whose key is lost can still be audited.
// A chain that does not verify is reported in the Report and as an error
// wrapping secret.ErrTampered.
func VerifyAudit(ctx context.Context, st metaReader, path string) (audit.Report, error) {
	anchor, err := readAuditHead(ctx, st)
	if err != nil {
		return audit.Report{}, err
	}
	rep, err := audit.Verify(ctx, path, anchor)
	if err == nil && !rep.OK {
		err = fmt.Errorf("%w: entry %d: %s", secret.ErrTampered, rep.Broken.Seq, rep.Broken.Reason)
	}
	return rep, err
}

// QueryAudit implements passman.Service.
func (l *Local) QueryAudit(ctx context.Context, f audit.Filter, limit int) ([]audit.Entry, error) {
	var out []audit.Entry
	var err error
	if limit > 0 {
		out, err = audit.Tail(ctx, l.log.Path(), limit, f)
	} else {
		err = audit.Read(ctx, l.log.Path(), f, func(e audit.Entry) error { out = append(out, e); return nil })
	}
	if err := l.read(ctx, audit.Entry{Action: ActionQuery}, err); err != nil {
		return nil, err
	}
	return out, nil
}

// VerifyDir verifies the audit log of the store in dir without a master key
// and without writing anything, so a damaged or tampered store can still be
// examined.
func VerifyDir(ctx context.Context, dir string) (audit.Report, error) {
	if _, err := os.Stat(filepath.Join(dir, DBFile)); errors.Is(err, os.ErrNotExist) {
		return audit.Report{}, fmt.Errorf("%w: no store in %s", secret.ErrNotFound, dir)
	}
	db, err := boltdb.Open(ctx, filepath.Join(dir, DBFile), boltdb.Options{ReadOnly: true})
	if err != nil {
		return audit.Report{}, err
	}
	defer db.Close()
	return VerifyAudit(ctx, rawMeta{db}, filepath.Join(dir, AuditFile))
}

// rawMeta reads store metadata from a backend opened without a keyring.
type rawMeta struct{ b store.Backend }

func (r rawMeta) Meta(ctx context.Context, name string) ([]byte, error) {
	return store.ReadMeta(ctx, r.b, name)
}
