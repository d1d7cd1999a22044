package etcd

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// errEnded is returned by a Tx used after its transaction ended.
var errEnded = errors.New("etcd store: transaction has ended")

// tx is one transaction: reads at one snapshot revision, writes buffered
// until commit.
type tx struct {
	d        *DB
	ctx      context.Context
	writable bool

	// rev is the snapshot revision, fixed by the first read (0 before).
	rev int64
	// reads holds the mod revision, at rev, of every key read (0 for a
	// missing one), and the value, so a second Get asks etcd nothing.
	reads map[string]readEntry
	// ranges are the key ranges [from, to) Scans went through.
	ranges [][2]string
	// writes are the buffered writes by full key; order lists their keys
	// sorted, for Scans that must see them.
	writes map[string]write
	order  []string
	// creates are the keys Create wrote, new to the store; a commit with
	// one may be sent again (sendAgain).
	creates map[string]bool

	beforeCommit []hook
	afterCommit  []func(committed bool)
	done         bool
	// err is the first failed read: a function that ignored it must not
	// commit what it decided without the data.
	err error
	// unverified: rev was not read linearizably (a batch's snapshot), so
	// the commit checks the reads even when there is nothing to write.
	unverified bool
	// blind: the commit compares nothing (a read group at a barrier's
	// revision: see groupKind.reads).
	blind bool
	// uncertain: the commit's request failed after it was sent, so it
	// may have been applied (see MayHaveCommitted).
	uncertain bool
	// barrierRev is the barrier's revision a first read that the read
	// cache could not answer already waited for, so that its read from
	// etcd does not wait for another.
	barrierRev int64
}

type readEntry struct {
	modRev int64
	val    []byte
	ok     bool
	// settled: read by GetSettled only, so not compared at commit.
	settled bool
}

type write struct {
	val []byte
	del bool
}

type hook struct {
	key string
	fn  func() error
}

var _ store.Tx = (*tx)(nil)

func (d *DB) newTx(ctx context.Context, writable bool) *tx {
	return &tx{d: d, ctx: ctx, writable: writable, reads: map[string]readEntry{}, writes: map[string]write{}}
}

func (t *tx) end() { t.done = true }

func (t *tx) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return err
}

// get is a range request on the snapshot. The first read of a
// transaction is linearizable (through a barrier shared with concurrent
// transactions: barrier.go; for a View with StaleReads, served by the
// member at hand) and fixes the snapshot revision; later ones are at
// that revision, which needs no round through the leader: any member that
// has applied the revision answers the same, so the member at hand serves
// it, and one that has not applied it yet says so and is asked again
// through the leader.
func (t *tx) get(key string, extra ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if t.rev == 0 {
		if !t.writable && t.d.cfg.StaleReads {
			return t.d.cli.Get(t.ctx, key, append(extra, clientv3.WithSerializable())...)
		}
		return t.firstGet(key, extra)
	}
	opts := append([]clientv3.OpOption{clientv3.WithRev(t.rev)}, extra...)
	resp, err := t.d.cli.Get(t.ctx, key, append(opts[:len(opts):len(opts)], clientv3.WithSerializable())...)
	if err != nil && errors.Is(err, rpctypes.ErrFutureRev) {
		return t.d.cli.Get(t.ctx, key, opts...)
	}
	return resp, err
}

// cached answers a point read from c when it can: at the snapshot
// revision, or for a first read at c's revision once it has passed the
// barrier's (a View with StaleReads takes c's revision as it is).
func (t *tx) cached(c *readCache, full string) (readEntry, bool) {
	if t.rev != 0 {
		return c.get(full, t.rev)
	}
	var at int64
	if !t.writable && t.d.cfg.StaleReads {
		c.mu.RLock()
		at = c.rev
		c.mu.RUnlock()
	} else {
		b, err := t.d.barrier.wait(t.ctx, t.d.issueBarrier)
		if err != nil {
			return readEntry{}, false
		}
		t.barrierRev = b
		var ok bool
		if at, ok = c.waitFor(t.ctx, b); !ok {
			return readEntry{}, false
		}
	}
	e, ok := c.get(full, at)
	if ok {
		t.pin(at)
	}
	return e, ok
}

func (t *tx) pin(h int64) {
	t.d.observe(h)
	if t.rev == 0 {
		t.rev = h
	}
}

// Get returns key's value: the transaction's own write if it made one,
// else the snapshot's.
func (t *tx) Get(key []byte) ([]byte, error) {
	if t.done {
		return nil, errEnded
	}
	full := t.d.prefix + string(key)
	if w, ok := t.writes[full]; ok {
		if w.del {
			return nil, store.ErrKeyNotFound
		}
		return w.val, nil
	}
	if e, ok := t.reads[full]; ok {
		if !e.ok {
			return nil, store.ErrKeyNotFound
		}
		if e.settled {
			e.settled = false
			t.reads[full] = e
		}
		return e.val, nil
	}
	if c := t.d.cacheFor(full); c != nil {
		if e, ok := t.cached(c, full); ok {
			cacheHits.Add(1)
			t.reads[full] = e
			if !e.ok {
				return nil, store.ErrKeyNotFound
			}
			return e.val, nil
		}
		cacheMisses.Add(1)
	}
	resp, err := t.get(full)
	if err != nil {
		return nil, t.fail(t.d.etcdError("get", err))
	}
	t.pin(resp.Header.Revision)
	if len(resp.Kvs) == 0 {
		t.reads[full] = readEntry{}
		return nil, store.ErrKeyNotFound
	}
	kv := resp.Kvs[0]
	t.reads[full] = readEntry{modRev: kv.ModRevision, val: kv.Value, ok: true}
	return kv.Value, nil
}

// GetSettled is Get for a key whose change another read of the
// transaction already checks: one whose meaning changes only together
// with a key read before it (a secret version's value, with its record:
// store.openValue). Its commit does not compare it, which spares etcd a
// range per such key on every member. A key found missing is compared
// as Get's are.
func (t *tx) GetSettled(key []byte) ([]byte, error) {
	full := t.d.prefix + string(key)
	before, had := t.reads[full]
	v, err := t.Get(key)
	// Settled unless a Get read it too (two readers of one secret in a
	// read group read it twice, both settled).
	if e, ok := t.reads[full]; ok && e.ok && (!had || before.settled) {
		e.settled = true
		t.reads[full] = e
	}
	return v, err
}

// Put buffers a write of a copy of value.
func (t *tx) Put(key, value []byte) error {
	if t.done {
		return errEnded
	}
	if !t.writable {
		return store.ErrReadOnly
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes (at most %d in an etcd store)", secret.ErrTooLarge, len(value), MaxValueSize)
	}
	t.buffer(t.d.prefix+string(key), write{val: append([]byte{}, value...)})
	return nil
}

// Create buffers a write of key, new to the store: the commit checks that
// one such key (the marker) does not exist yet, which makes it safe to send
// again (sendAgain).
func (t *tx) Create(key, value []byte) error {
	if err := t.Put(key, value); err != nil {
		return err
	}
	t.markCreate(t.d.prefix + string(key))
	return nil
}

// marker is the created key the commit checks, "" without one: one is
// enough to tell whether the transaction applied (sendAgain), and each
// compare costs every member a lookup.
func (t *tx) marker() string {
	m := ""
	for k := range t.creates {
		if m == "" || k < m {
			m = k
		}
	}
	return m
}

func (t *tx) markCreate(full string) {
	if t.creates == nil {
		t.creates = map[string]bool{}
	}
	t.creates[full] = true
}

// Delete buffers the removal of key.
func (t *tx) Delete(key []byte) error {
	if t.done {
		return errEnded
	}
	if !t.writable {
		return store.ErrReadOnly
	}
	if err := checkKey(key); err != nil {
		return err
	}
	t.buffer(t.d.prefix+string(key), write{del: true})
	return nil
}

func (t *tx) buffer(full string, w write) {
	if _, ok := t.writes[full]; !ok {
		i, _ := slices.BinarySearch(t.order, full)
		t.order = slices.Insert(t.order, i, full)
	}
	t.writes[full] = w
}

// Scan walks the snapshot's keys with the prefix merged with the
// transaction's own writes, a page of PageSize keys per request. Keys are
// compared as the walk passes them, so writes made by fn ahead of the
// cursor are visited and keys deleted behind it are not revisited.
func (t *tx) Scan(prefix, start []byte, fn func(key, value []byte) (bool, error)) error {
	if t.done {
		return errEnded
	}
	p := t.d.prefix + string(prefix)
	from, end := p, prefixEnd(p)
	if start != nil && t.d.prefix+string(start) > from {
		from = t.d.prefix + string(start)
	}
	if from >= end {
		return nil
	}
	cursor := from
	// The range actually read, [from, cursor), is recorded however the
	// walk ends.
	defer func() {
		if t.writable && cursor > from {
			t.ranges = append(t.ranges, [2]string{from, cursor})
		}
	}()
	var page []*mvccpb.KeyValue
	pi, more := 0, true
	plen := len(t.d.prefix)
	for {
		for {
			for pi < len(page) && string(page[pi].Key) < cursor {
				t.noteRead(page[pi])
				pi++
			}
			if pi < len(page) || !more {
				break
			}
			resp, err := t.get(cursor, clientv3.WithRange(end), clientv3.WithLimit(int64(t.d.cfg.PageSize)))
			if err != nil {
				return t.fail(t.d.etcdError("scan", err))
			}
			t.pin(resp.Header.Revision)
			page, pi, more = resp.Kvs, 0, resp.More
		}
		var ek string
		haveE := pi < len(page)
		if haveE {
			ek = string(page[pi].Key)
		}
		bi, _ := slices.BinarySearch(t.order, cursor)
		haveB := bi < len(t.order) && t.order[bi] < end
		if !haveE && !haveB {
			cursor = end
			return nil
		}
		var key string
		var val []byte
		if haveB && (!haveE || t.order[bi] <= ek) {
			key = t.order[bi]
			w := t.writes[key]
			cursor = key + "\x00"
			if w.del {
				continue
			}
			val = w.val
		} else {
			key, val = ek, page[pi].Value
			t.noteRead(page[pi])
			cursor = key + "\x00"
		}
		ok, err := fn([]byte(key[plen:]), val)
		if err != nil || !ok {
			return err
		}
	}
}

func (t *tx) noteRead(kv *mvccpb.KeyValue) {
	if !t.writable {
		return
	}
	k := string(kv.Key)
	if _, ok := t.reads[k]; !ok {
		t.reads[k] = readEntry{modRev: kv.ModRevision, val: kv.Value, ok: true}
	}
}

// compares are the commit's conditions: every key read is as it was at
// the snapshot (a missing one still missing), no key of a scanned range
// was created or changed since, and the marker does not exist yet (also in
// a blind commit).
func (t *tx) compares() []clientv3.Cmp {
	cmps := make([]clientv3.Cmp, 0, len(t.reads)+len(t.ranges)+1)
	if k := t.marker(); k != "" {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
	}
	if t.rev == 0 || t.blind {
		return cmps
	}
	for k, e := range t.reads {
		if !e.settled {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", e.modRev))
		}
	}
	for _, r := range t.ranges {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r[0]).WithRange(r[1]), "<", t.rev+1))
	}
	return cmps
}

// BeforeCommit registers fn to run once every function of the transaction
// has succeeded (in a Batch: every batched call), just before the commit is
// sent; an error from fn abandons the transaction and becomes its error.
// Callbacks run in registration order; a non-empty key makes a callback run
// once per attempt, at the place of its last registration. They run once
// per commit attempt, and an attempt that conflicts runs them again on the
// next, so their effects outside the transaction must be safe to repeat.
func (t *tx) BeforeCommit(key string, fn func() error) {
	if key != "" {
		t.beforeCommit = slices.DeleteFunc(t.beforeCommit, func(h hook) bool { return h.key == key })
	}
	t.beforeCommit = append(t.beforeCommit, hook{key, fn})
}

// AfterCommit registers fn to learn, once the commit attempt is over,
// whether it committed. Callbacks run once per attempt, in registration
// order, also when a BeforeCommit callback or the commit failed (false).
func (t *tx) AfterCommit(fn func(committed bool)) {
	t.afterCommit = append(t.afterCommit, fn)
}

func (t *tx) runAfterCommit(committed bool) {
	for _, fn := range t.afterCommit {
		fn(committed)
	}
	t.afterCommit = nil
}

func (t *tx) runBeforeCommit() error {
	for _, h := range t.beforeCommit {
		if err := h.fn(); err != nil {
			return err
		}
	}
	return nil
}
