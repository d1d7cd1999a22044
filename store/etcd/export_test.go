package etcd

// CachesLoaded reports whether every read cache of d is loaded, for the
// package's external tests.
func CachesLoaded(d *DB) bool {
	for _, c := range d.caches {
		c.mu.RLock()
		ready := c.ready
		c.mu.RUnlock()
		if !ready {
			return false
		}
	}
	return true
}
