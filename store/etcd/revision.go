package etcd

// Revision is the etcd revision the transaction reads at, fixed by its
// first read (0 before it): a backup records the point it copied.
func (t *tx) Revision() int64 { return t.rev }
