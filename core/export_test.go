package core

import (
	"context"
	"fmt"
	"time"

	"github.com/passman-dev/passman/audit"
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
// function undoes it.
func BreakAudit(l *Local, err error) (restore func()) {
	orig := l.log
	l.log = failingLog{auditLog: orig, err: err}
	return func() { l.log = orig }
}

func (f failingLog) AppendDeferred(context.Context, audit.Entry) (audit.Entry, error) {
	return audit.Entry{}, f.err
}

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
