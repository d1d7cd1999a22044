package boltdb

import (
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// trimEvery is how many read transactions pass between two nudges to the
// trimmer. With the kernel's fault-around each read can map 64 KiB per page
// it touches, so rarer checks overshoot the limit (measured on a 1 GB
// store: checking every 1024 reads overshot a 128 MiB limit by 80 MiB).
const trimEvery = 128

// trimmer keeps the mapped database file from filling the resident set.
//
// bbolt reads through a read-only shared mapping of the whole file, and
// every page a reader touches (plus the kernel's fault-around neighbours)
// stays mapped, so random reads across a 1 GB store leave about 1 GB in RSS
// even though the heap is a few MB. Those are clean page-cache pages: the
// kernel can drop them, but RSS-based limits and dashboards count them.
// When the process's file-backed resident pages exceed the limit, the
// trimmer drops the mapping's page-table entries with
// madvise(MADV_DONTNEED). For a read-only shared file mapping that loses
// nothing — the next access maps the page again from the page cache (a minor
// fault) — and it runs inside a read transaction, which holds bbolt's mmap
// lock, so the mapping cannot move underneath it.
//
// The check and the madvise run on a goroutine of their own, so no reader
// pays for them: readers only nudge it every trimEvery transactions.
type trimmer struct {
	limit int64 // bytes; <= 0 disables
	reads atomic.Uint32
	nudge chan struct{}
	done  sync.WaitGroup
}

// start launches the trimmer's goroutine for d; stop ends it.
func (t *trimmer) start(d *DB, limit int64) {
	if limit == 0 {
		limit = DefaultMaxMappedResident
	}
	t.limit = limit
	if limit <= 0 || !trimSupported {
		return
	}
	t.nudge = make(chan struct{}, 1)
	t.done.Add(1)
	go func() {
		defer t.done.Done()
		for range t.nudge {
			if fileResident() <= t.limit {
				continue
			}
			// An error means the store is closing or damaged; readers
			// will report either.
			_ = d.exec(false, nil, func(btx *bolt.Tx) error {
				dropMapping(btx.DB().Info().Data, uintptr(btx.Size()))
				return nil
			})
		}
	}()
}

func (t *trimmer) stop() {
	if t.nudge != nil {
		close(t.nudge)
		t.done.Wait()
	}
}

// afterRead is called at the end of each read transaction.
func (t *trimmer) afterRead() {
	if t.nudge == nil || t.reads.Add(1)%trimEvery != 0 {
		return
	}
	select {
	case t.nudge <- struct{}{}:
	default: // a check is already pending
	}
}
