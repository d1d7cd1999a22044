package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// DefaultCheckpointInterval bounds how long the head the store records may
// lag behind the audit log: the entries of reads and failures, which write
// nothing to the database, are recorded by the background checkpointer at
// most this long after they were written (plus one database commit). Only
// entries within that window can be cut off the log after a crash without
// `audit verify` noticing.
const DefaultCheckpointInterval = time.Second

// checkpointKeyLabel is the HKDF info that derives the checkpoint signing
// key from a master key. Changing it makes every recorded checkpoint fail
// verification.
const checkpointKeyLabel = "passman audit checkpoint key v1"

// checkpointer is Local's state for recording the audit head.
type checkpointer struct {
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	// recorded is a seq the store is known to have recorded, so a tick
	// with nothing new reads nothing.
	recorded atomic.Uint64

	mu   sync.Mutex
	keys map[string][]byte // derived signing keys by master key ID
	err  error             // the last background checkpoint's error
}

func (o Options) checkpointInterval() time.Duration {
	if o.CheckpointInterval > 0 {
		return o.CheckpointInterval
	}
	return DefaultCheckpointInterval
}

// startCheckpoints runs the checkpointer until stopCheckpoints.
func (l *Local) startCheckpoints(every time.Duration) {
	l.ck.stop = make(chan struct{})
	l.ck.done = make(chan struct{})
	go func() {
		defer close(l.ck.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.ck.stop:
				return
			case <-t.C:
			}
			if l.log.Head().Seq <= l.ck.recorded.Load() {
				continue
			}
			err := l.checkpoint(context.Background())
			l.ck.mu.Lock()
			l.ck.err = err
			l.ck.mu.Unlock()
		}
	}()
}

// stopCheckpoints stops the checkpointer and waits for it.
func (l *Local) stopCheckpoints() {
	if l.ck.stop == nil {
		return
	}
	l.ck.stopOnce.Do(func() { close(l.ck.stop) })
	<-l.ck.done
}

// checkpointErr is the last background checkpoint's error, for Ready.
func (l *Local) checkpointErr() error {
	l.ck.mu.Lock()
	defer l.ck.mu.Unlock()
	return l.ck.err
}

func (l *Local) markRecorded(seq uint64) {
	for {
		cur := l.ck.recorded.Load()
		if seq <= cur || l.ck.recorded.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// checkpointKey returns the signing key derived from master key id,
// derived once per key.
func (l *Local) checkpointKey(id string) ([]byte, error) {
	l.ck.mu.Lock()
	defer l.ck.mu.Unlock()
	if k, ok := l.ck.keys[id]; ok {
		return k, nil
	}
	k, err := l.kr.DeriveKey(id, checkpointKeyLabel)
	if err != nil {
		return nil, err
	}
	if l.ck.keys == nil {
		l.ck.keys = map[string][]byte{}
	}
	l.ck.keys[id] = k
	return k, nil
}

// forgetKeys wipes the derived keys, on Close.
func (l *Local) forgetKeys() {
	l.ck.mu.Lock()
	defer l.ck.mu.Unlock()
	for _, k := range l.ck.keys {
		clear(k)
	}
	l.ck.keys = nil
}

// signedHead encodes h as a checkpoint signed with the active master key.
func (l *Local) signedHead(h audit.Head) ([]byte, error) {
	id := l.kr.Active()
	key, err := l.checkpointKey(id)
	if err != nil {
		return nil, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	c, err := audit.SignCheckpoint(h, l.opts.now(), id, key)
	if err != nil {
		return nil, fmt.Errorf("sign audit checkpoint: %w", err)
	}
	return c.Marshal()
}

func readCheckpoint(ctx context.Context, st metaReader, name string) (audit.Checkpoint, error) {
	b, err := st.Meta(ctx, name)
	if err != nil || b == nil {
		return audit.Checkpoint{}, err
	}
	return audit.ParseCheckpoint(b)
}

// checkpoint records the audit log's current head in the store, signed
// with the active master key. It never moves the head backwards, and
// re-signs an unchanged head that is unsigned or signed with another key.
func (l *Local) checkpoint(ctx context.Context) error {
	head := l.log.Head()
	if head.Seq == 0 {
		return nil
	}
	if l.cluster != nil {
		// On a cluster the head recorded is one the store's replica of
		// the chain reaches, or verifying the replica would find it
		// truncated.
		if err := l.cluster.repl.wait(head.Seq); err != nil {
			return fmt.Errorf("record audit head: %w", err)
		}
	}
	active := l.kr.Active()
	// covered reports whether the recorded checkpoint old already
	// records head under the active key.
	covered := func(old []byte) (bool, error) {
		var cur audit.Checkpoint
		if old != nil {
			var err error
			if cur, err = audit.ParseCheckpoint(old); err != nil {
				return false, err
			}
		}
		switch {
		case cur.Seq > head.Seq:
			return true, nil
		case cur.Seq == head.Seq && cur.Hash != head.Hash:
			return false, fmt.Errorf("%w: audit log entry %d does not match the head the store recorded", secret.ErrTampered, head.Seq)
		}
		return cur.Seq == head.Seq && cur.Signed() && cur.KeyID == active, nil
	}
	// Read first: most ticks after a write find its head recorded, and a
	// read costs no commit.
	old, err := l.st.Meta(ctx, l.headName)
	if err != nil {
		return fmt.Errorf("record audit head: %w", err)
	}
	if done, err := covered(old); err != nil || done {
		if done {
			l.markRecorded(head.Seq)
		}
		return err
	}
	rec, err := l.signedHead(head)
	if err != nil {
		return err
	}
	err = l.st.UpdateMeta(ctx, l.headName, func(old []byte) ([]byte, error) {
		if done, err := covered(old); err != nil || done {
			return nil, err
		}
		return rec, nil
	})
	if err != nil {
		return fmt.Errorf("record audit head: %w", err)
	}
	l.markRecorded(head.Seq)
	return nil
}

// checkRecordedSignature refuses, at Open, a recorded checkpoint whose
// signature does not verify or whose key the keyring lacks. An unsigned
// one passes: reconcile signs it.
func (l *Local) checkRecordedSignature(cp audit.Checkpoint) error {
	if !cp.Signed() {
		return nil
	}
	key, err := l.checkpointKey(cp.KeyID)
	if errors.Is(err, secret.ErrKey) {
		return fmt.Errorf("%w: the audit checkpoint is signed with master key %s, which the keyring does not hold; supply that key too (%s=\"new,old\" or its key file) or run 'passman audit verify'", secret.ErrKey, cp.KeyID, keyring.EnvVar)
	}
	if err != nil {
		return err
	}
	if !cp.CheckMAC(key) {
		return fmt.Errorf("%w: the audit checkpoint the store recorded (entry %d) has an invalid signature: forged or recomputed; run 'passman audit verify'", secret.ErrTampered, cp.Seq)
	}
	return nil
}

// checkpointSource is where VerifyAudit finds the recorded checkpoint and,
// if it has one, the keyring that checks its signature.
type checkpointSource interface {
	metaReader
	Info(ctx context.Context) (store.Info, error)
	// Keyring returns nil when verifying without a master key.
	Keyring() *keyring.Keyring
}

// Warnings of an audit verification.
const (
	warnUnchecked  = "checkpoint signature not checked: no master key"
	warnWrongKey   = "checkpoint signature not checked: the master key given is not this store's"
	warnUnsigned   = "unsigned checkpoint: recorded before checkpoints were signed; the store signs it when next opened with its master key"
	warnNoRecorded = "no checkpoint recorded: every entry is unconfirmed"
)

// judgeSignature fills in what rep says of checkpoint cp's signature, and
// breaks rep if the signature is wrong. The error is for a signature that
// cannot be checked with a keyring that is the store's.
func judgeSignature(ctx context.Context, st checkpointSource, cp audit.Checkpoint, rep *audit.Report) error {
	rep.SignedBy, rep.SignedAt = cp.KeyID, cp.Time
	if !cp.Signed() {
		switch {
		case cp.Seq > 0:
			rep.Signature = audit.SignatureUnsigned
			rep.Warnings = append(rep.Warnings, warnUnsigned)
		case rep.Entries > 0:
			rep.Signature = audit.SignatureUnsigned
			rep.Warnings = append(rep.Warnings, warnNoRecorded)
		}
		return nil
	}
	kr := st.Keyring()
	if kr == nil {
		rep.Signature = audit.SignatureUnchecked
		rep.Warnings = append(rep.Warnings, warnUnchecked)
		return nil
	}
	if !kr.Has(cp.KeyID) {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		rep.Signature = audit.SignatureUnchecked
		if !slices.ContainsFunc(info.Keys, kr.Has) {
			rep.Warnings = append(rep.Warnings, warnWrongKey)
			return nil
		}
		// The keyring is the store's, so the checkpoint names a key it
		// should hold: a retired key dropped too early, or a forged ID.
		return fmt.Errorf("%w: the audit checkpoint is signed with master key %s, which the keyring does not hold", secret.ErrKey, cp.KeyID)
	}
	key, err := kr.DeriveKey(cp.KeyID, checkpointKeyLabel)
	if err != nil {
		return fmt.Errorf("check audit checkpoint: %w", err)
	}
	defer clear(key)
	if !cp.CheckMAC(key) {
		rep.Signature = audit.SignatureInvalid
		rep.OK = false
		rep.Broken = &audit.Break{Seq: cp.Seq, Reason: "the checkpoint the store recorded has an invalid signature (head forged or recomputed)"}
		return nil
	}
	rep.Signature = audit.SignatureValid
	return nil
}
