package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/policy"
	"github.com/passman-dev/passman/rotation"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// failingLog is an audit log whose appends fail, as on a full disk.
type failingLog struct {
	auditLog
	err error
}

func (f failingLog) Append(context.Context, audit.Entry) (audit.Entry, error) {
	return audit.Entry{}, f.err
}

// BreakAudit makes every later audit append of l fail with err; the returned
// function undoes it. It stops the checkpointer, which reads l.log.
func BreakAudit(l *Local, err error) (restore func()) {
	l.stopCheckpoints()
	orig := l.log
	l.log = failingLog{auditLog: orig, err: err}
	return func() { l.log = orig }
}

func (f failingLog) AppendDeferred(context.Context, audit.Entry) (audit.Entry, error) {
	return audit.Entry{}, f.err
}

// ConnectionResolver is the resolver a rotation through connection conn
// gets.
func ConnectionResolver(l *Local, conn string) rotation.Resolver {
	return connectionResolver{l: l, conn: conn}
}

// AuditPath is where l's audit log is.
func AuditPath(l *Local) string { return l.log.Path() }

// AuditHeadMeta and CheckpointKeyLabel name what the tests forge.
const (
	AuditHeadMeta      = auditHeadMeta
	CheckpointKeyLabel = checkpointKeyLabel
)

// Crash releases l as a killed process would leave it: the checkpointer
// stopped, the files closed, and no final checkpoint recorded.
func Crash(l *Local) error {
	l.stopCheckpoints()
	return errors.Join(l.stopCluster(), l.log.Close(), l.db.Close())
}

// RecordedCheckpoint reads the checkpoint l's store recorded.
func RecordedCheckpoint(ctx context.Context, l *Local) (audit.Checkpoint, error) {
	return readCheckpoint(ctx, l.st, l.headName)
}

// AuditHead is the head of l's audit log.
func AuditHead(l *Local) audit.Head { return l.log.Head() }

// SeedTokens writes n token records (identity "seed", one hour to live)
// straight into l's database, for benchmarks that need a store with many
// tokens: creating them through CreateToken would audit each one.
func SeedTokens(ctx context.Context, l *Local, n int) error {
	now := l.opts.now().UTC()
	return l.db.Update(ctx, func(tx store.Tx) error {
		for i := range n {
			hash := hashToken(fmt.Sprintf("seed-%d", i))
			rec := tokenRecord{TokenInfo: secret.TokenInfo{Accessor: hash[:accessorLen], Identity: "seed", Claims: map[string]string{"repository": "acme/app", "ref": "refs/heads/main"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, Hash: hash}
			if err := putTokenRecord(tx, rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// SealedByKey counts the sealed values in l's database (every version's
// data key and the detection seed) by the master key that wraps them, read
// straight from the database so a crash test sees how far a re-wrap got.
func SealedByKey(ctx context.Context, l *Local) (map[string]int, error) {
	count := map[string]int{}
	err := l.db.View(ctx, func(tx store.Tx) error {
		add := func(b []byte) error {
			var s keyring.Sealed
			if err := s.UnmarshalBinary(b); err != nil {
				return err
			}
			count[s.KeyID]++
			return nil
		}
		seed, err := tx.Get([]byte("m/seed"))
		if err != nil {
			return fmt.Errorf("detection seed: %w", err)
		}
		if err := add(seed); err != nil {
			return err
		}
		// s/<path>\x00 is a record; s/<path>\x00\x01<version> a sealed value.
		return tx.Scan([]byte("s/"), nil, func(k, v []byte) (bool, error) {
			if i := bytes.IndexByte(k, 0); i < 0 || i == len(k)-1 {
				return true, nil
			}
			return true, add(v)
		})
	})
	return count, err
}

// DecideLeakResponse is the respond policy's decision RespondToLeaks
// hands the runner (unexported: a front end responds through
// RespondToLeaks, every step authorized).
func DecideLeakResponse(l *Local, ctx context.Context, in policy.RespondInput) (policy.Response, error) {
	return l.decideLeakResponse(ctx, in)
}

// WriteStoredPolicy writes m and bumps the policy generation as another
// process sharing the store would, without compiling anything: for tests
// of reloading and of sets that do not compile.
func WriteStoredPolicy(ctx context.Context, l *Local, m secret.PolicyModule) error {
	return l.db.Update(ctx, func(tx store.Tx) error {
		gen, err := readPolicyGeneration(tx)
		if err != nil {
			return err
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := store.PutMeta(tx, policyMetaPrefix+m.Name, b); err != nil {
			return err
		}
		return store.PutMeta(tx, policyGenerationMeta, []byte(strconv.FormatUint(gen+1, 10)))
	})
}

// PolicyGeneration is the store's policy generation.
func PolicyGeneration(ctx context.Context, l *Local) (uint64, error) {
	gen, _, err := l.readPolicies(ctx)
	return gen, err
}

// TamperReplica rewrites entry seq of server id's replicated chain with fn.
func TamperReplica(ctx context.Context, b store.Backend, id string, seq uint64, fn func([]byte) []byte) error {
	return b.Update(ctx, func(tx store.Tx) error {
		v, err := store.MetaTx(tx, replicaName(id, seq))
		if err != nil || v == nil {
			return fmt.Errorf("replica entry %d: %v", seq, err)
		}
		return store.PutMeta(tx, replicaName(id, seq), fn(bytes.Clone(v)))
	})
}
