package core

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// Put implements passman.Service.
func (l *Local) Put(ctx context.Context, path string, value secret.Value, opts secret.PutOptions) (secret.VersionInfo, error) {
	var info secret.VersionInfo
	o := op{action: ActionPut, perm: policy.ActionWrite, path: path, secret: true}
	if opts.Metadata != nil {
		o.request = &policy.Request{Metadata: opts.Metadata}
		o.authorizeFirst = specChecked(opts.Metadata.Rotation)
		if err := l.authorizeAlso(ctx, o, metadataPerms(*opts.Metadata)); err != nil {
			return secret.VersionInfo{}, err
		}
	}
	err := l.mutate(ctx, o, func(c store.Call) error {
		if opts.Metadata != nil {
			if err := l.checkSpec(ctx, path, opts.Metadata.Rotation); err != nil {
				return err
			}
		}
		var err error
		info, err = l.st.Put(ctx, c, path, value.Reveal(), opts)
		return err
	})
	return info, err
}

// Get implements passman.Service.
func (l *Local) Get(ctx context.Context, path string, sel secret.Selector) (secret.Versioned, error) {
	o := op{action: ActionGet, perm: policy.ActionRead, path: path, secret: true}
	if err := validateOp(o); err != nil {
		return secret.Versioned{Path: path}, l.deny(ctx, o, nil, err)
	}
	// Not in the read's transaction, where decide runs.
	l.refreshPolicies(ctx)
	// The policy decides inside the read, on the record the read uses: one
	// transaction, one decode, and no value is decrypted for a caller the
	// policy refuses.
	var d decision
	var v secret.Versioned
	var err error
	if l.cluster != nil && l.cluster.recordReads {
		var committed bool
		v, committed, err = l.getRecorded(ctx, o, sel, &d)
		if dec, _ := d.get(); committed || dec != nil {
			return v, err
		}
	} else {
		v, err = l.st.GetIf(ctx, path, sel, l.allowInto(ctx, o, &d))
		if dec, refused := d.get(); refused != nil {
			return secret.Versioned{Path: path}, l.deny(ctx, o, dec, refused)
		}
	}
	dec, _ := d.get()
	if dec == nil {
		// The read failed before the policy saw the record (a bad
		// selector, a record that does not decode whole). Ask the policy
		// the way authorize does, so that a refused caller gets a denial,
		// never an error that tells whether or how the secret exists.
		var refused error
		if dec, refused = l.authorize(ctx, o); refused != nil {
			return secret.Versioned{Path: path}, refused
		}
	}
	if err := l.read(ctx, getEntry(path, sel, v.Info, dec), err); err != nil {
		v.Value.Wipe()
		return secret.Versioned{Path: path}, err
	}
	return v, nil
}

// getRecorded is Get on a cluster (unless it serves stale reads): the
// read and its audit entry commit together (store.GetRecorded), which
// makes the read linearizable without a round of its own, and concurrent
// reads share the commit. Every outcome the policy saw is recorded there,
// a refusal included; committed reports that it was. A read that did not
// commit is audited afterwards, as a change that failed is. d holds the
// decision of the last attempt, none if it did not reach the policy.
func (l *Local) getRecorded(ctx context.Context, o op, sel secret.Selector, d *decision) (secret.Versioned, bool, error) {
	committed, asked := false, false
	// A caller that gives up must not stop its read being recorded.
	actx := context.WithoutCancel(ctx)
	allow := l.allowInto(ctx, o, d)
	ask := func(md *secret.Metadata) error {
		asked = true
		return allow(md)
	}
	v, err := l.st.GetRecorded(ctx, o.path, sel, store.ReadCall{Allow: ask, Record: func(tx store.Tx, info secret.VersionInfo, opErr error) error {
		// Each attempt (a group that lost runs again) stands alone: a
		// decision of an earlier one does not speak for this one.
		committed = false
		if !asked {
			// Nothing the policy saw: Get asks it afterwards.
			d.set(nil, nil)
			return nil
		}
		asked = false
		dec, refused := d.get()
		e := getEntry(o.path, sel, info, dec)
		if refused != nil {
			e = denialEntry(o, dec)
		}
		pc, ok := tx.(preCommitter)
		ac, ok2 := tx.(afterCommitter)
		if !ok || !ok2 {
			return fmt.Errorf("%w: a cluster's transaction cannot record a read", secret.ErrAudit)
		}
		pc.BeforeCommit("", func() error {
			_, err := l.cluster.repl.seal(actx, tx, ac, l.complete(actx, e, opErr))
			return err
		})
		pc.BeforeCommit("audit-sync", l.syncFor(tx))
		ac.AfterCommit(func(ok bool) { committed = ok })
		return nil
	}})
	dec, _ := d.get()
	if committed || dec == nil {
		return v, committed, err
	}
	if err != nil && !errors.Is(err, secret.ErrAudit) {
		if aerr := l.record(ctx, getEntry(o.path, sel, secret.VersionInfo{}, dec), err); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	return secret.Versioned{Path: o.path}, false, err
}

// getEntry is the audit entry of a read of info, selected by sel.
func getEntry(path string, sel secret.Selector, info secret.VersionInfo, dec *audit.Decision) audit.Entry {
	e := audit.Entry{Action: ActionGet, Path: auditPath(path), Version: info.Version, Fingerprint: info.Fingerprint, Decision: dec}
	if sel.Stage != "" {
		e.Details = map[string]string{"stage": string(sel.Stage)}
	}
	return e
}

// Describe implements passman.Service.
func (l *Local) Describe(ctx context.Context, path string) (secret.Secret, error) {
	dec, err := l.authorize(ctx, op{action: ActionDescribe, perm: policy.ActionRead, path: path, secret: true})
	if err != nil {
		return secret.Secret{}, err
	}
	s, err := l.st.Describe(ctx, path)
	if err := l.read(ctx, audit.Entry{Action: ActionDescribe, Path: auditPath(path), Decision: dec}, err); err != nil {
		return secret.Secret{}, err
	}
	return s, nil
}

// List implements passman.Service. The policy decides on the prefix.
func (l *Local) List(ctx context.Context, opts secret.ListOptions) (secret.ListPage, error) {
	dec, err := l.authorize(ctx, op{action: ActionList, perm: policy.ActionList, path: opts.Prefix})
	if err != nil {
		return secret.ListPage{}, err
	}
	p, err := l.st.List(ctx, opts)
	e := audit.Entry{Action: ActionList, Details: map[string]string{"count": strconv.Itoa(len(p.Entries))}, Decision: dec}
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
	err := l.mutate(ctx, op{action: ActionRollback, perm: policy.ActionWrite, path: path, secret: true}, func(c store.Call) error {
		var err error
		info, err = l.st.Rollback(ctx, c, path, version)
		return err
	})
	return info, err
}

// Delete implements passman.Service.
func (l *Local) Delete(ctx context.Context, path string, versions []int) error {
	return l.mutate(ctx, op{action: ActionDelete, perm: policy.ActionDelete, path: path, secret: true}, func(c store.Call) error { return l.st.Delete(ctx, c, path, versions) })
}

// Undelete implements passman.Service.
func (l *Local) Undelete(ctx context.Context, path string, versions []int) error {
	return l.mutate(ctx, op{action: ActionUndelete, perm: policy.ActionDelete, path: path, secret: true}, func(c store.Call) error { return l.st.Undelete(ctx, c, path, versions) })
}

// Destroy implements passman.Service.
func (l *Local) Destroy(ctx context.Context, path string, versions []int) error {
	return l.mutate(ctx, op{action: ActionDestroy, perm: policy.ActionDestroy, path: path, secret: true}, func(c store.Call) error { return l.st.Destroy(ctx, c, path, versions) })
}

// Purge implements passman.Service.
func (l *Local) Purge(ctx context.Context, path string) error {
	return l.mutate(ctx, op{action: ActionPurge, perm: policy.ActionDestroy, path: path, secret: true}, func(c store.Call) error { return l.st.Purge(ctx, c, path) })
}

// UpdateMetadata implements passman.Service.
func (l *Local) UpdateMetadata(ctx context.Context, path string, u secret.MetadataUpdate) (secret.Metadata, error) {
	var m secret.Metadata
	o := op{action: ActionMeta, perm: policy.ActionWrite, path: path, secret: true, request: &policy.Request{Metadata: &u}, details: rotationDetails(u.RotationStatus), authorizeFirst: specChecked(u.Rotation)}
	perms := metadataPerms(u)
	o.perm = perms[0]
	if err := l.authorizeAlso(ctx, o, perms[1:]); err != nil {
		return secret.Metadata{}, err
	}
	err := l.mutate(ctx, o, func(c store.Call) error {
		// After authorization (authorizeFirst when there is a spec to
		// check): whether a connection exists and whom it allows is
		// nobody else's business.
		if err := l.checkSpec(ctx, path, u.Rotation); err != nil {
			return err
		}
		var err error
		m, err = l.st.UpdateMetadata(ctx, c, path, u)
		return err
	})
	return m, err
}

// SetStage implements passman.Service. Moving stage labels is how a rotation
// finishes, so it needs the rotate permission.
func (l *Local) SetStage(ctx context.Context, path string, stage secret.Stage, version int) error {
	return l.mutate(ctx, op{action: ActionStage, perm: policy.ActionRotate, path: path, secret: true}, func(c store.Call) error { return l.st.SetStage(ctx, c, path, stage, version) })
}

// VerifyAudit implements passman.Service. It records the head first, so
// entries of this session's reads are covered.
func (l *Local) VerifyAudit(ctx context.Context) (audit.Report, error) {
	dec, err := l.authorize(ctx, op{action: ActionVerify, perm: policy.ActionAdmin})
	if err != nil {
		return audit.Report{}, err
	}
	if err := l.checkpoint(ctx); err != nil {
		return audit.Report{}, err
	}
	rep, err := verifyChain(ctx, l.st, l.headName, func(anchor audit.Head) (audit.Report, error) {
		return audit.Verify(ctx, l.log.Path(), anchor)
	})
	if l.cluster != nil && err == nil {
		// Every server's chain, as replicated in the store.
		rep, err = l.clusterVerify(ctx, rep)
	}
	e := audit.Entry{Action: ActionVerify, Details: map[string]string{"entries": strconv.FormatUint(rep.Entries, 10)}, Decision: dec}
	if aerr := l.record(ctx, e, err); aerr != nil && !errors.Is(err, secret.ErrTampered) {
		return rep, aerr
	}
	return rep, err
}

// QueryAudit implements passman.Service.
func (l *Local) QueryAudit(ctx context.Context, f audit.Filter, limit int) ([]audit.Entry, error) {
	dec, err := l.authorize(ctx, op{action: ActionQuery, perm: policy.ActionAdmin})
	if err != nil {
		return nil, err
	}
	var out []audit.Entry
	if limit > 0 {
		out, err = audit.Tail(ctx, l.log.Path(), limit, f)
	} else {
		err = audit.Read(ctx, l.log.Path(), f, func(e audit.Entry) error { out = append(out, e); return nil })
	}
	if err := l.read(ctx, audit.Entry{Action: ActionQuery, Decision: dec}, err); err != nil {
		return nil, err
	}
	return out, nil
}

// metadataPerms are the authorization actions a metadata change needs:
// write for its plain fields; its rotation settings (spec, period) are an
// action of their own, since they decide what a rotation does on a target
// system; and the rotation runner's record (status) needs rotate, since it
// schedules revocations. The first is the one the change is audited under.
func metadataPerms(u secret.MetadataUpdate) []string {
	var perms []string
	rot, status := u.Rotation != nil || u.RotationPeriod != nil, u.RotationStatus != nil
	if u.SetsPlainFields() || !rot && !status {
		perms = append(perms, policy.ActionWrite)
	}
	if rot {
		perms = append(perms, policy.ActionConfigureRotation)
	}
	if status {
		perms = append(perms, policy.ActionRotate)
	}
	return perms
}

// authorizeAlso asks the policy about each of perms for o (its other
// actions), before the mutation authorizes o itself: a change refused any
// of them has no effect.
func (l *Local) authorizeAlso(ctx context.Context, o op, perms []string) error {
	for _, perm := range perms {
		if perm == o.perm {
			continue
		}
		also := o
		also.perm = perm
		if _, err := l.authorize(ctx, also); err != nil {
			return err
		}
	}
	return nil
}

// rotationDetails puts a rotation's step on the audit log, so the log
// reads as the rotation's history: what triggered it (a leak names the
// finding and the policy's decision), each step, and how it ended.
func rotationDetails(st *secret.RotationStatus) map[string]string {
	if st == nil {
		return nil
	}
	d := map[string]string{"rotation_state": string(st.State)}
	add := func(k, v string) {
		if v != "" {
			d[k] = v
		}
	}
	add("rotation_step", string(st.Step))
	add("rotation_trigger", st.Trigger)
	add("rotation_error", st.Error)
	if st.Pending > 0 {
		d["rotation_pending"] = strconv.Itoa(st.Pending)
	}
	return d
}
