package core

import (
	"context"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/rotation"
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

// ConnectionResolver is the resolver a rotation through connection conn
// gets.
func ConnectionResolver(l *Local, conn string) rotation.Resolver {
	return connectionResolver{l: l, conn: conn}
}

// AuditPath is where l's audit log is.
func AuditPath(l *Local) string { return l.log.Path() }
