package store

import (
	"bytes"
	"sync"
)

// recordCacheBytes bounds the stored bytes the record cache keeps (its
// decoded records take about as much again).
const recordCacheBytes = 8 << 20

// recordCache keeps the decoded records of recent reads by path, each with
// a copy of the bytes it was decoded from. A read that finds the stored
// bytes unchanged reuses the decoded record: decoding a record's JSON was
// a tenth of a server read's CPU, and it grows with the version history
// while a read uses one version. Comparing bytes, not tracking writes,
// keeps it correct whoever writes the backend (another process, a restore).
//
// Records it returns are shared: callers must not modify them.
type recordCache struct {
	mu    sync.RWMutex
	m     map[string]cachedRecord
	bytes int
}

type cachedRecord struct {
	raw []byte
	r   *record
}

func newRecordCache() *recordCache { return &recordCache{m: map[string]cachedRecord{}} }

// decode returns path's record decoded from raw, from the cache when raw
// is what the cached record was decoded from.
func (c *recordCache) decode(path string, raw []byte) (*record, error) {
	c.mu.RLock()
	e, ok := c.m[path]
	c.mu.RUnlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.r, nil
	}
	r, err := decodeRecord(path, raw)
	if err != nil || len(raw) > recordCacheBytes/16 {
		return r, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[path]; ok {
		delete(c.m, path)
		c.bytes -= len(old.raw)
	}
	// Evict arbitrary entries (map order) until the new one fits: cheap,
	// and a hot record evicted is back on its next read.
	for k, v := range c.m {
		if c.bytes+len(raw) <= recordCacheBytes {
			break
		}
		delete(c.m, k)
		c.bytes -= len(v.raw)
	}
	c.m[path] = cachedRecord{raw: bytes.Clone(raw), r: r}
	c.bytes += len(raw)
	return r, nil
}
