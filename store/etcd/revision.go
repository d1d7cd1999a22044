package etcd

// Revision is the etcd revision the transaction reads at, fixed by its
// first read (0 before it): a backup records the point it copied.
func (t *tx) Revision() int64 { return t.rev }

// MayHaveCommitted reports, after a commit attempt that AfterCommit called
// failed, whether it failed in a way that leaves its outcome unknown: the
// request was sent and no answer came (a lost connection, a timeout), so
// etcd may have applied it.
func (t *tx) MayHaveCommitted() bool { return t.uncertain }
