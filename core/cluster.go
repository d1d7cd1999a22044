package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passman-dev/passman/audit"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
)

// A cluster is several servers over one shared backend (store/etcd). Each
// server keeps an audit chain of its own: its log file in its Dir, its head
// recorded in the store under audit-head/<server id>, and every entry
// replicated into the store under audit-log/<server id>/<seq>, so that
// an acknowledged operation's entry survives the loss of the server and
// its disk. An entry counts as written once it is in the store and in the
// local file: a change commits only after its entry is replicated, and a
// read answers only after its entry is. An entry that rode in a commit is
// durable in the store, so the local file's fsync follows it (syncSoon).
//
// One chain per server, not one for the cluster: a shared head would make
// every request of every server write one key, serialising them all.
const (
	clusterHeadPrefix    = auditHeadMeta + "/" // audit-head/<id> -> signed checkpoint
	clusterLogPrefix     = "audit-log/"        // audit-log/<id>/<seq:20> -> the entry's line
	clusterReplicaPrefix = "audit-replica/"    // audit-replica/<id> -> last seq replicated
)

// DefaultTokenCacheTTL bounds how long a server of a cluster trusts a
// token record it cached: a revocation on another server reaches it
// through the backend's watch within milliseconds, and within this bound
// even when the watch is broken.
const DefaultTokenCacheTTL = time.Second

// replicaBatch bounds the entries one replication transaction carries.
const replicaBatch = 512

// replicaPage is how many replicated entries one read of a verification
// takes.
const replicaPage = 1000

// replicaTimeout bounds one replication attempt: an unreachable cluster
// fails requests (closed) instead of holding them.
const replicaTimeout = 10 * time.Second

// serverIDPattern is compiled on first use: its {0,63} costs every
// passman command ~0.4 ms of start-up when compiled in a package variable.
var serverIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`) })

func checkCluster(opts Options) error {
	if !serverIDPattern().MatchString(opts.ServerID) {
		return fmt.Errorf("%w: a server of a shared store needs a server id of 1 to 64 characters a-z, 0-9, '.', '_' and '-' (got %q)", secret.ErrInvalidArgument, opts.ServerID)
	}
	if opts.Dir == "" {
		return fmt.Errorf("%w: a server of a shared store needs a directory for its audit log", secret.ErrInvalidArgument)
	}
	return nil
}

func headMetaName(opts Options) string {
	if opts.Backend != nil {
		return clusterHeadPrefix + opts.ServerID
	}
	return auditHeadMeta
}

func replicaName(id string, seq uint64) string {
	return fmt.Sprintf("%s%s/%020d", clusterLogPrefix, id, seq)
}

// watcher is a backend that reports changes under a key prefix as they
// commit (store/etcd's Watch).
type watcher interface {
	Watch(ctx context.Context, prefix []byte, fn func(key []byte, reset bool))
}

// afterCommitter is a transaction that says whether it committed
// (store/etcd's).
type afterCommitter interface {
	AfterCommit(fn func(committed bool))
}

// syncFor is the audit sync a change's transaction runs just before it
// commits. On a cluster the entries not yet in the store ride in the
// change's own commit (one etcd round instead of two) where they can;
// elsewhere, and when they cannot, it waits for them as Sync does.
func (l *Local) syncFor(tx store.Tx) func() error {
	ac, ok := tx.(afterCommitter)
	if l.cluster == nil || !ok {
		return l.log.Sync
	}
	r := l.cluster.repl
	return func() error {
		tr := r.reservationOf(tx)
		if tr == nil {
			if err := r.Log.Sync(); err != nil {
				return err
			}
			return r.stageInto(tx, ac, r.Log.Head().Seq)
		}
		// The entries before the reserved ones go first (gap-free), then
		// the reserved ones themselves, in the same commit.
		if err := r.stageInto(tx, ac, tr.Prev().Seq); err != nil {
			return err
		}
		return r.putLines(tx, tr.Entries(), tr.Lines())
	}
}

// batchBackend is a backend that group-commits concurrent transactions.
type batchBackend interface {
	Batch(ctx context.Context, fn func(store.Tx) error) error
}

// clusterState is a cluster server's machinery, stopped by stopCluster.
type clusterState struct {
	repl   *replicatedLog
	cancel context.CancelFunc
	done   chan struct{}
	// recordReads: a read commits with its audit entry (getRecorded),
	// unless the deployment chose stale reads, which the member at hand
	// answers without the quorum a commit needs.
	recordReads bool
}

// staleReader is a backend that can serve reads from the member at hand
// (store/etcd's with Config.StaleReads).
type staleReader interface{ StaleReads() bool }

// newReplicatedLog replicates alog into b as server id's chain; async
// lets an append return before its replication (audit sync "write").
func newReplicatedLog(alog *audit.Log, b store.Backend, id string, async bool) *replicatedLog {
	r := &replicatedLog{Log: alog, b: b, id: id, async: async}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// startCluster wraps the local log so its entries are replicated,
// replicates what an earlier run left unreplicated, and starts watching
// token records.
func (l *Local) startCluster(ctx context.Context, alog *audit.Log) (auditLog, error) {
	// With audit sync "write" an entry counts as written once write(2)
	// returned; its replication, like its fsync, follows within
	// milliseconds but is not waited for, except by changes: their
	// entries are in the store before they commit whatever the mode.
	r := newReplicatedLog(alog, l.db, l.opts.ServerID, l.opts.AuditSync == audit.SyncWrite)
	last, err := store.ReadMeta(ctx, l.db, clusterReplicaPrefix+r.id)
	if err != nil {
		return nil, fmt.Errorf("read audit replica head: %w", err)
	}
	if last != nil {
		if r.done, err = strconv.ParseUint(string(last), 10, 64); err != nil {
			return nil, fmt.Errorf("%w: audit replica head of server %s: %v", secret.ErrCorrupt, r.id, err)
		}
	}
	r.taken = r.done
	head := alog.Head()
	// The replica head lags (see wait), so look past the local log too:
	// a server whose log was lost must not start its chain again over the
	// one the store holds.
	beyond, err := replicaBeyond(ctx, l.db, r.id, head.Seq)
	if err != nil {
		return nil, err
	}
	if beyond && head.Seq > 0 {
		// A change's entries reach the store in its commit and the local
		// log just after: a crash in between leaves them in the store
		// only. Take back what continues this log's chain.
		if head, err = adoptReplica(ctx, l.db, r.id, alog); err != nil {
			return nil, err
		}
		if beyond, err = replicaBeyond(ctx, l.db, r.id, head.Seq); err != nil {
			return nil, err
		}
	}
	if r.done > head.Seq || beyond {
		return nil, fmt.Errorf("%w: audit log %s ends at entry %d but the store holds later entries of server %s; recover the log from the store ('passman audit recover') or give this server a new id", secret.ErrTampered, alog.Path(), head.Seq, r.id)
	}
	if head.Seq > r.done {
		// Written before a crash, after the last replication.
		err := audit.Read(ctx, alog.Path(), audit.Filter{}, func(e audit.Entry) error {
			if e.Seq > r.done {
				r.pending = append(r.pending, e)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read audit log to replicate: %w", err)
		}
		if err := r.wait(head.Seq); err != nil {
			return nil, err
		}
	}
	l.tokens.ttl = DefaultTokenCacheTTL
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cs := &clusterState{repl: r, cancel: cancel, done: make(chan struct{})}
	if w, ok := l.db.(watcher); ok {
		prefix := store.MetaKey(tokenMetaPrefix)
		go func() {
			defer close(cs.done)
			w.Watch(wctx, prefix, func(key []byte, reset bool) {
				if reset {
					l.tokens.clear()
					return
				}
				l.tokens.drop(string(key[len(prefix):]))
			})
		}()
	} else {
		close(cs.done)
	}
	sr, ok := l.db.(staleReader)
	cs.recordReads = !ok || !sr.StaleReads()
	l.cluster = cs
	return r, nil
}

// adoptReplica appends to alog the entries of server id's replicated chain
// that follow its head without a gap, checked to continue its chain, and
// returns the new head.
func adoptReplica(ctx context.Context, b store.Backend, id string, alog *audit.Log) (audit.Head, error) {
	head := alog.Head()
	prefix := clusterLogPrefix + id + "/"
	for {
		var lines [][]byte
		next := head.Seq + 1
		err := b.View(ctx, func(tx store.Tx) error {
			lines = lines[:0]
			return tx.Scan(store.MetaKey(prefix), store.MetaKey(replicaName(id, next)), func(k, v []byte) (bool, error) {
				if string(k) != string(store.MetaKey(replicaName(id, next+uint64(len(lines))))) {
					return false, nil
				}
				lines = append(lines, append([]byte(nil), v...))
				return len(lines) < replicaPage, nil
			})
		})
		if err != nil {
			return head, fmt.Errorf("read audit replica: %w", err)
		}
		if len(lines) == 0 {
			return head, nil
		}
		if head, err = alog.Adopt(ctx, lines); err != nil {
			return head, fmt.Errorf("take back audit entries of server %s from the store: %w", id, err)
		}
		if len(lines) < replicaPage {
			return head, nil
		}
	}
}

// replicaBeyond reports whether the store holds an entry of server id's
// chain after seq: entry seq+1, or for an empty log any entry at all.
func replicaBeyond(ctx context.Context, b store.Backend, id string, seq uint64) (bool, error) {
	found := false
	err := b.View(ctx, func(tx store.Tx) error {
		if seq > 0 {
			v, err := store.MetaTx(tx, replicaName(id, seq+1))
			found = v != nil
			return err
		}
		return store.ScanMeta(tx, clusterLogPrefix+id+"/", func(string, []byte) (bool, error) {
			found = true
			return false, nil
		})
	})
	if err != nil {
		return false, fmt.Errorf("read audit replica: %w", err)
	}
	return found, nil
}

func (l *Local) stopCluster() error {
	if l.cluster == nil {
		return nil
	}
	l.cluster.cancel()
	<-l.cluster.done
	return nil
}

// update runs fn in a write transaction, group-committed with concurrent
// ones on a cluster, where the transactions of one server all move its
// chain head and would otherwise conflict with each other.
func (l *Local) update(ctx context.Context, fn func(store.Tx) error) error {
	if b, ok := l.db.(batchBackend); ok && l.cluster != nil {
		return b.Batch(ctx, fn)
	}
	return l.db.Update(ctx, fn)
}

// replicatedLog is the local audit log whose entries are also written to
// the shared store, in group commits: a waiter whose entry is pending and
// not yet being written writes every pending entry that follows the last
// one taken, while up to replicaFlights such writes are in flight (etcd
// commits concurrent writes in one raft round, so overlapping them raises
// what one server replicates per round trip). Entries are taken in seq
// order without gaps; done advances over the writes that finished.
type replicatedLog struct {
	*audit.Log
	b  store.Backend
	id string

	mu      sync.Mutex
	cond    *sync.Cond
	pending []audit.Entry   // appended locally, not yet taken for writing
	taken   uint64          // every entry up to here is written or being written
	done    uint64          // every entry up to here is in the store
	flights int             // writes in flight
	retry   [][]audit.Entry // writes that failed, to do again
	// finished holds the first and last seq of writes that ended beyond
	// done, waiting for the ones before them.
	finished map[uint64]uint64
	// async: Append does not wait for the store (audit sync "write"); a
	// background flusher replicates, and Sync still waits.
	async    bool
	flushing bool
	// syncDue: a local fsync is scheduled (syncSoon).
	syncDue bool
	// resv holds the open reservation of each transaction that is sealing
	// change entries (see seal).
	resv map[store.Tx]*audit.Reservation
}

// replicaFlights bounds the replication writes of one server in flight.
// One: on a CPU-bound cluster every Txn costs each etcd member a raft
// round and a WAL write, and the reads that arrive while one is in flight
// then share the next (bench-cluster with the read cache: 1.62 ms of CPU
// per read against 1.85 with four in flight, and a lower p99).
const replicaFlights = 1

func (r *replicatedLog) Append(ctx context.Context, e audit.Entry) (audit.Entry, error) {
	w, err := r.Log.Append(ctx, e)
	if err != nil {
		return w, err
	}
	r.enqueue(w)
	if r.async {
		r.kick()
		return w, nil
	}
	if err := r.wait(w.Seq); err != nil {
		return audit.Entry{}, err
	}
	return w, nil
}

// kick starts the background flusher unless it runs. It replicates until
// nothing is pending; a failure leaves the entries pending for the next
// Sync (Ready calls it, so the server reports itself not ready).
func (r *replicatedLog) kick() {
	r.mu.Lock()
	if r.flushing {
		r.mu.Unlock()
		return
	}
	r.flushing = true
	r.mu.Unlock()
	go func() {
		for {
			r.mu.Lock()
			last := r.target()
			if last <= r.done {
				r.flushing = false
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			if err := r.wait(last); err != nil {
				r.mu.Lock()
				r.flushing = false
				r.mu.Unlock()
				return
			}
		}
	}()
}

func (r *replicatedLog) AppendDeferred(ctx context.Context, e audit.Entry) (audit.Entry, error) {
	w, err := r.Log.AppendDeferred(ctx, e)
	if err == nil {
		r.enqueue(w)
	}
	return w, err
}

// Sync makes every entry appended so far durable locally and replicated.
func (r *replicatedLog) Sync() error {
	if err := r.Log.Sync(); err != nil {
		return err
	}
	return r.wait(r.Log.Head().Seq)
}

// Close replicates what is pending, then closes the local log.
func (r *replicatedLog) Close() error {
	err := r.wait(r.Log.Head().Seq)
	return errors.Join(err, r.Log.Close())
}

func (r *replicatedLog) enqueue(e audit.Entry) {
	r.mu.Lock()
	r.pending = append(r.pending, e)
	r.mu.Unlock()
	r.cond.Broadcast()
}

// wait returns once entry seq is in the store, writing pending entries
// itself when its own is not yet being written.
func (r *replicatedLog) wait(seq uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.done < seq {
		if r.flights >= replicaFlights {
			r.cond.Wait()
			continue
		}
		var batch []audit.Entry
		switch {
		case len(r.retry) > 0:
			// A write that failed goes again as it was: the entries
			// around it are written or being written.
			batch, r.retry = r.retry[0], r.retry[1:]
		case r.taken < seq:
			if batch = r.takeRun(); len(batch) == 0 {
				// An entry before seq is appended but not yet queued.
				r.cond.Wait()
				continue
			}
			r.taken = batch[len(batch)-1].Seq
		default:
			r.cond.Wait()
			continue
		}
		first, last := batch[0].Seq, batch[len(batch)-1].Seq
		r.flights++
		// Only what is known to be in the store goes into the
		// replica head: a write that fails must not leave a head
		// beyond a gap. Re-writing entries after a restart is harmless.
		safe := r.done
		r.mu.Unlock()
		err := r.write(batch, safe)
		r.mu.Lock()
		r.flights--
		r.mu.Unlock()
		r.settle(batch, err == nil)
		r.mu.Lock()
		if err != nil {
			return fmt.Errorf("replicate audit entries %d-%d to the store: %w", first, last, err)
		}
	}
	return nil
}

// stageInto puts the entries up to seq that no write has taken into tx,
// to be in the store exactly when tx commits, and settles them when it is
// over: done if it committed, due again if not. Entries already taken by
// a write in flight, or not yet queued, are waited for instead: a change
// never commits before its entry is in the store.
func (r *replicatedLog) stageInto(tx store.Tx, ac afterCommitter, seq uint64) error {
	r.mu.Lock()
	if r.done >= seq {
		r.mu.Unlock()
		return nil
	}
	if r.taken >= seq || len(r.retry) > 0 {
		r.mu.Unlock()
		return r.wait(seq)
	}
	batch := r.takeRun()
	if len(batch) == 0 || batch[len(batch)-1].Seq < seq {
		r.pending = append(r.pending, batch...)
		r.mu.Unlock()
		return r.wait(seq)
	}
	r.taken = batch[len(batch)-1].Seq
	safe := r.done
	r.mu.Unlock()
	settled := false
	ac.AfterCommit(func(committed bool) {
		if settled {
			return
		}
		settled = true
		r.settle(batch, committed)
	})
	if err := r.putEntries(tx, batch); err != nil {
		return err
	}
	if safe > 0 {
		return store.PutMeta(tx, clusterReplicaPrefix+r.id, []byte(strconv.FormatUint(safe, 10)))
	}
	return nil
}

// seal seals a change's entry e into tx's reservation of the chain's tip,
// opening it (and arranging its end) on the transaction's first entry.
// The reserved entries go into the store in tx's commit (syncFor) and into
// the local log once it committed; a commit that fails, on a conflict
// with another server's transaction for one, drops them, so its re-run
// seals them anew and the audit records only the attempt that committed.
// Appends of other requests wait while the reservation is open, for one
// commit's round trip: their entries could not be in the store before the
// reserved ones anyway (the chain is replicated without gaps).
func (r *replicatedLog) seal(ctx context.Context, tx store.Tx, ac afterCommitter, e audit.Entry) (audit.Entry, error) {
	tx = rootOf(tx)
	res := r.reservationOf(tx)
	if res == nil {
		var err error
		if res, err = r.Log.Reserve(ctx); err != nil {
			return audit.Entry{}, fmt.Errorf("%w: %v", secret.ErrAudit, err)
		}
		r.mu.Lock()
		if r.resv == nil {
			r.resv = map[store.Tx]*audit.Reservation{}
		}
		r.resv[tx] = res
		r.mu.Unlock()
		ac.AfterCommit(func(committed bool) { r.resolve(tx, res, committed) })
	}
	w, err := res.Seal(e)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("%w: %v", secret.ErrAudit, err)
	}
	return w, nil
}

func (r *replicatedLog) reservationOf(tx store.Tx) *audit.Reservation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resv[rootOf(tx)]
}

// uncertainCommitter is a transaction that can tell a failed commit whose
// outcome is unknown (store/etcd's).
type uncertainCommitter interface{ MayHaveCommitted() bool }

// rooted is a transaction that commits as part of another (a call of
// store/etcd's concurrent batch): one reservation serves them all.
type rooted interface{ Root() store.Tx }

func rootOf(tx store.Tx) store.Tx {
	if r, ok := tx.(rooted); ok {
		return r.Root()
	}
	return tx
}

// resolve ends tx's reservation once its commit attempt is over: committed,
// its entries are in the store (replicated) and go into the local log,
// synced before the change is answered; not committed, they never existed
// (unless the outcome is unknown: see below).
func (r *replicatedLog) resolve(tx store.Tx, res *audit.Reservation, committed bool) {
	r.mu.Lock()
	delete(r.resv, tx)
	r.mu.Unlock()
	entries := res.Entries()
	uncertain := false
	if u, ok := tx.(uncertainCommitter); ok && !committed {
		uncertain = u.MayHaveCommitted()
	}
	if !committed && !uncertain || len(entries) == 0 {
		res.Abort()
		return
	}
	// Taken before the reservation ends: entries appended after it must
	// find the replication's cursor past the reserved ones.
	r.mu.Lock()
	r.taken = max(r.taken, entries[len(entries)-1].Seq)
	r.mu.Unlock()
	// A commit whose outcome is unknown may have applied the change: its
	// entries are kept (an audit never drops the record of a change that
	// may have happened; the caller's error is audited after them) and
	// written to the store again, which is harmless if they are there.
	r.settle(entries, committed)
	if err := res.Commit(); err != nil {
		// The log closed or failed; the entries are in the store, and a
		// restart takes them back from there (adoptReplica).
		return
	}
	// A failure of a write or fsync makes the log refuse every later
	// append (the server stops answering); committed entries are in the
	// store already.
	if !committed || r.Log.Head().Seq == 0 {
		// Not known to be in the store, or the log's first entries: a
		// restart takes a lost tail back only onto a chain it has.
		_ = r.Log.Sync()
		return
	}
	// Committed, the entries are durable in the store (a quorum of etcd
	// members fsynced them), so they are not fsynced here before the
	// answer: written now, they survive a crash of this process, and
	// syncSoon makes them durable locally within localSyncEvery. A crash
	// of the machine in between loses that tail of the file, which the
	// restart takes back from the store.
	if r.Log.Flush() == nil && !r.async {
		r.syncSoon()
	}
}

// localSyncEvery bounds how long a cluster server's local audit file
// trails, unsynced, the entries it committed to the store. One fsync per
// period instead of one per group commit: on bench-cluster's two cores the
// fsync after each commit cost ~0.04 ms of CPU per read and a disk wait in
// every group's round.
const localSyncEvery = 20 * time.Millisecond

// syncSoon fsyncs the local log localSyncEvery from now, unless an fsync
// is already due: every entry written before it starts is covered.
func (r *replicatedLog) syncSoon() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.syncDue {
		return
	}
	r.syncDue = true
	time.AfterFunc(localSyncEvery, func() {
		r.mu.Lock()
		r.syncDue = false
		r.mu.Unlock()
		// A failure leaves the log failed (every later append refuses);
		// after Close the file was synced by Close.
		_ = r.Log.Sync()
	})
}

// putLines puts reserved entries, encoded as lines, into tx as replicated
// entries.
func (r *replicatedLog) putLines(tx store.Tx, entries []audit.Entry, lines [][]byte) error {
	for i := range entries {
		// Created, not put: a sealed entry is new to the store, and saying
		// so lets a commit whose answer was lost be sent again safely.
		if err := store.CreateMeta(tx, replicaName(r.id, entries[i].Seq), lines[i]); err != nil {
			return err
		}
	}
	return nil
}

// putEntries puts entries into tx as replicated entries.
func (r *replicatedLog) putEntries(tx store.Tx, entries []audit.Entry) error {
	for i := range entries {
		b, err := json.Marshal(&entries[i])
		if err != nil {
			return fmt.Errorf("encode audit entry %d: %w", entries[i].Seq, err)
		}
		if err := store.PutMeta(tx, replicaName(r.id, entries[i].Seq), append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// settle records the end of a write of batch.
func (r *replicatedLog) settle(batch []audit.Entry, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.cond.Broadcast()
	if !ok {
		r.retry = append(r.retry, batch)
		return
	}
	if r.finished == nil {
		r.finished = map[uint64]uint64{}
	}
	r.finished[batch[0].Seq] = batch[len(batch)-1].Seq
	for {
		end, ok := r.finished[r.done+1]
		if !ok {
			return
		}
		delete(r.finished, r.done+1)
		r.done = end
	}
}

// target is the last entry appended so far, for the background flusher.
func (r *replicatedLog) target() uint64 {
	t := r.taken
	for _, e := range r.pending {
		t = max(t, e.Seq)
	}
	return t
}

// takeRun removes from pending the run of entries that follows taken
// without a gap, up to replicaBatch of them: the store never holds an
// entry whose predecessor is not in it, on its way or due for a retry.
func (r *replicatedLog) takeRun() []audit.Entry {
	slices.SortFunc(r.pending, func(a, b audit.Entry) int { return compareSeq(a.Seq, b.Seq) })
	i := 0
	for i < len(r.pending) && r.pending[i].Seq <= r.taken {
		i++
	}
	r.pending = r.pending[i:]
	n := 0
	for n < len(r.pending) && n < replicaBatch && r.pending[n].Seq == r.taken+uint64(n)+1 {
		n++
	}
	batch := slices.Clone(r.pending[:n])
	r.pending = slices.Delete(r.pending, 0, n)
	return batch
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// write puts batch into the store, with safe as the replica head.
func (r *replicatedLog) write(batch []audit.Entry, safe uint64) error {
	lines := make([][]byte, len(batch))
	for i := range batch {
		b, err := json.Marshal(&batch[i])
		if err != nil {
			return fmt.Errorf("encode audit entry %d: %w", batch[i].Seq, err)
		}
		lines[i] = append(b, '\n')
	}
	ctx, cancel := context.WithTimeout(context.Background(), replicaTimeout)
	defer cancel()
	// Blind writes: nothing read, so nothing to conflict on.
	return r.b.Update(ctx, func(tx store.Tx) error {
		for i, e := range batch {
			if err := store.PutMeta(tx, replicaName(r.id, e.Seq), lines[i]); err != nil {
				return err
			}
		}
		if safe == 0 {
			return nil
		}
		return store.PutMeta(tx, clusterReplicaPrefix+r.id, []byte(strconv.FormatUint(safe, 10)))
	})
}

// ChainReport is the verification of one server's chain in a shared store.
type ChainReport struct {
	Server string       `json:"server"`
	Report audit.Report `json:"report"`
}

// VerifyCluster checks every server's audit chain replicated in the shared
// store b against the head each recorded, with kr checking the heads'
// signatures (nil: chains only). The error wraps secret.ErrTampered when a
// chain does not verify.
func VerifyCluster(ctx context.Context, b store.Backend, kr *keyring.Keyring) ([]ChainReport, error) {
	servers, err := clusterServers(ctx, b)
	if err != nil {
		return nil, err
	}
	var out []ChainReport
	var errs []error
	for _, id := range servers {
		rep, err := verifyChain(ctx, rawMeta{b, kr}, clusterHeadPrefix+id, func(anchor audit.Head) (audit.Report, error) {
			rr := replicaReader(ctx, b, id)
			// Closed so that the reader's goroutine ends however far
			// verification read.
			defer rr.Close()
			return audit.VerifyReader(ctx, rr, anchor)
		})
		out = append(out, ChainReport{Server: id, Report: rep})
		if err != nil {
			errs = append(errs, fmt.Errorf("server %s: %w", id, err))
		}
	}
	return out, errors.Join(errs...)
}

// clusterServers lists the servers that recorded a chain head or
// replicated entries.
func clusterServers(ctx context.Context, b store.Backend) ([]string, error) {
	seen := map[string]bool{}
	err := b.View(ctx, func(tx store.Tx) error {
		for _, p := range []string{clusterHeadPrefix, clusterReplicaPrefix} {
			err := store.ScanMeta(tx, p, func(name string, _ []byte) (bool, error) {
				seen[strings.TrimPrefix(name, p)] = true
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit chains: %w", err)
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// ReadReplica writes server id's audit chain as the shared store holds
// it, in the log file's format: what replaces a server's log after its
// disk was lost (or what an auditor reads).
func ReadReplica(ctx context.Context, b store.Backend, id string, w io.Writer) error {
	rr := replicaReader(ctx, b, id)
	defer rr.Close()
	_, err := io.Copy(w, rr)
	return err
}

// replicaReader streams server id's replicated chain, in seq order, a
// transaction per page so that a long chain is not one huge read.
func replicaReader(ctx context.Context, b store.Backend, id string) *io.PipeReader {
	pr, pw := io.Pipe()
	go func() {
		prefix := clusterLogPrefix + id + "/"
		var after string
		for {
			var lines [][]byte
			err := b.View(ctx, func(tx store.Tx) error {
				lines = lines[:0]
				var start []byte
				if after != "" {
					// Seqs are fixed-width: the next key sorts after this.
					start = store.MetaKey(prefix + after + "\x00")
				}
				return tx.Scan(store.MetaKey(prefix), start, func(k, v []byte) (bool, error) {
					after = string(k[len(store.MetaKey(prefix)):])
					lines = append(lines, append([]byte(nil), v...))
					return len(lines) < replicaPage, nil
				})
			})
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			for _, line := range lines {
				if _, err := pw.Write(line); err != nil {
					return
				}
			}
			if len(lines) < replicaPage {
				pw.Close()
				return
			}
		}
	}()
	return pr
}

// clusterVerify is Local.VerifyAudit's part on a cluster: every chain the
// store holds, this server's included.
func (l *Local) clusterVerify(ctx context.Context, local audit.Report) (audit.Report, error) {
	reps, err := VerifyCluster(ctx, l.db, l.kr)
	total := local
	for _, r := range reps {
		if r.Server == l.opts.ServerID {
			continue
		}
		total.Entries += r.Report.Entries
		total.Unconfirmed += r.Report.Unconfirmed
		if total.Broken == nil && r.Report.Broken != nil {
			b := *r.Report.Broken
			b.Reason = "server " + r.Server + ": " + b.Reason
			total.Broken = &b
			total.OK = false
		}
	}
	return total, err
}
