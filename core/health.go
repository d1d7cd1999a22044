package core

import (
	"context"
	"fmt"
)

// Ready reports whether the store can serve requests: the database answers
// and the audit log still accepts entries. A log that failed a write
// refuses every later entry until it is reopened, and with it every
// operation (fail closed), so a server reports itself not ready rather
// than answer each request with an audit error. So does a store whose last
// background checkpoint failed.
func (l *Local) Ready(ctx context.Context) error {
	if _, err := l.st.Info(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	// Sync fails at once on a failed or closed log, and otherwise costs
	// nothing unless entries await their fsync.
	if err := l.log.Sync(); err != nil {
		return err
	}
	// A checkpointer that cannot record the head no longer bounds how much
	// of the log a crash could let someone cut off unnoticed.
	if err := l.checkpointErr(); err != nil {
		return err
	}
	return nil
}
