// Package etcd implements store.Backend on an etcd v3 cluster, so that
// several passman servers serve one store.
//
// Keys are the store's keys under a per-deployment prefix (Config.Prefix),
// so one etcd cluster can hold several stores. Values arrive sealed: the
// store encrypts every secret value before it reaches a backend, and the
// master key never leaves the servers, so etcd, its snapshots and its
// backups only ever hold ciphertext and metadata.
//
// Transactions. View reads one snapshot: its first read is linearizable
// (it sees every write acknowledged before it started, through a barrier
// concurrent transactions share: barrier.go) and fixes a revision; every
// later read, and every page of a Scan, is served at that revision. Update is optimistic and serializable:
// its reads come from one snapshot revision, its writes are buffered (and
// visible to its own reads), and it commits in one etcd Txn that compares
// every key it read against the revision it read it at (a missing key must
// still be missing) and every range it scanned against inserts since the
// snapshot. If any compare fails another writer got there first: the
// buffered writes are dropped and fn runs again on a new snapshot. Batch
// runs concurrent callers' functions in one such Txn (group commit), which
// is how a server's concurrent writes, that all move its audit chain head,
// avoid conflicting with each other; the functions run side by side and
// are merged in order (calltx.go), at the latest revision the server saw
// (batch.go).
//
// Revisions and compaction. passman never compacts etcd's history; the
// operator does (etcd --auto-compaction-mode/retention, or etcdctl
// compact). A snapshot revision that is compacted while a transaction
// still reads at it makes that read fail with an error wrapping
// ErrCompacted; an Update retries on a new snapshot, a View returns the
// error (its fn may have kept what it read). Transactions here last
// milliseconds, so any retention of a minute or more is never in the way.
// Defragment (etcdctl defrag) after compaction to give the space back.
//
// Limits. etcd refuses requests above --max-request-bytes (1.5 MiB by
// default) and Txns with more than --max-txn-ops operations (128 by
// default). A passman secret value is up to 1 MiB before sealing, and some
// store transactions (re-wrapping keys, reaping tokens) touch up to a
// thousand keys, so passman needs etcd started with
// --max-request-bytes=8388608 and --max-txn-ops=4096 (Config's defaults
// assume them). Within that, one value is bounded at MaxValueSize (2 MiB: a
// sealed 1 MiB secret with room to spare, and a quarter of the request
// limit, so a transaction carrying one is never near it) and a whole
// transaction at MaxTxnBytes; a transaction past either fails before it is
// sent, with an error wrapping secret.ErrTooLarge.
package etcd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/passman-dev/passman/secret"
	"github.com/passman-dev/passman/store"
	"github.com/passman-dev/passman/store/internal/groupcommit"
)

// Limits; see the package comment.
const (
	// MaxKeySize matches bbolt's, so a key valid on one backend is valid
	// on the other.
	MaxKeySize = 32768
	// MaxValueSize bounds one value.
	MaxValueSize = 2 << 20
	// DefaultMaxRequestBytes is the etcd --max-request-bytes passman
	// expects.
	DefaultMaxRequestBytes = 8 << 20
	// DefaultMaxTxnOps is the etcd --max-txn-ops passman expects.
	DefaultMaxTxnOps = 4096
	// DefaultPageSize is how many keys one range request of a Scan fetches.
	DefaultPageSize = 256
)

// ErrCompacted is wrapped by a read at a snapshot revision etcd has
// compacted away.
var ErrCompacted = errors.New("etcd snapshot revision was compacted")

// ErrClosed is wrapped by errors from a closed DB.
var ErrClosed = errors.New("etcd store is closed")

// Config says where the cluster is and how to use it.
type Config struct {
	// Endpoints are the members' client URLs.
	Endpoints []string
	// Prefix is prepended to every key: one etcd cluster may hold several
	// stores. Empty means "passman/".
	Prefix string
	// TLS, when set, is used for the connections (client certificates
	// included); nil connects without TLS.
	TLS *tls.Config
	// Username and Password authenticate to etcd when it has auth enabled.
	Username, Password string
	// DialTimeout bounds connecting; 0 means 5s.
	DialTimeout time.Duration
	// MaxRequestBytes and MaxTxnOps are the etcd server's limits; 0 means
	// the defaults above.
	MaxRequestBytes int
	MaxTxnOps       int
	// PageSize is the number of keys per range request of a Scan.
	PageSize int
	// StaleReads serves a View's first read from the member the client is
	// connected to, without the round trip through the leader that makes
	// it linearizable: a read may then miss writes acknowledged a moment
	// before (by any server), in exchange for a lower read latency and
	// less load on the leader. Updates are never stale: their commit
	// compares revisions on the leader. A server that serves stale reads
	// also keeps its secret reads out of ReadBatch (core), so that they
	// need no quorum.
	StaleReads bool
	// ReadCache names key prefixes whose point reads a server answers
	// from a copy in memory kept current by a watch (cache.go), without
	// weakening them: a linearizable read still waits for the shared
	// barrier, and for the watch to pass its revision. Empty: every read
	// goes to etcd (what short-lived commands want: the copy is loaded
	// whole on Open).
	ReadCache []string
	// Client, when set, is used instead of dialling Endpoints; Close then
	// leaves it open.
	Client *clientv3.Client
}

// DB is a store.Backend on etcd. It is safe for concurrent use.
type DB struct {
	cli       *clientv3.Client
	ownClient bool
	prefix    string
	cfg       Config
	maxTxnB   int

	closed    atomic.Bool
	closeOnce sync.Once
	inflight  sync.WaitGroup

	batch   groupcommit.Queue
	reads   groupcommit.Queue
	barrier barrier
	route   leaderRoute
	// seen is the latest revision a response named (see attemptBatch).
	seen atomic.Int64
	// wroteCached is the revision of this server's latest commit that
	// wrote a cached key (see cachedRev).
	wroteCached atomic.Int64

	caches      []*readCache
	stopCaches  context.CancelFunc
	cachesEnded sync.WaitGroup
}

var _ store.Backend = (*DB)(nil)

// Open connects to the cluster. It does not check that a store is there
// (store.Open does), but it does reach a member, so a wrong endpoint fails
// here rather than on the first request.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "passman/"
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.MaxTxnOps <= 0 {
		cfg.MaxTxnOps = DefaultMaxTxnOps
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	d := &DB{prefix: cfg.Prefix, cfg: cfg, cli: cfg.Client}
	d.batch.Init(maxBatch, func(calls []*groupcommit.Call) {
		d.commitBatch(calls, groupKind{snapshot: d.cachedRev, concurrent: true})
	})
	d.reads.Init(maxBatch, func(calls []*groupcommit.Call) {
		d.commitBatch(calls, groupKind{snapshot: d.cachedRev, reads: true})
	})
	d.batch.Gather(gatherWait)
	d.reads.Gather(gatherWait)
	// A sixteenth of the request is left for keys' framing, compares and
	// the Txn's own encoding.
	d.maxTxnB = cfg.MaxRequestBytes - cfg.MaxRequestBytes/16
	if d.cli == nil {
		if len(cfg.Endpoints) == 0 {
			return nil, fmt.Errorf("%w: etcd store: no endpoints", secret.ErrInvalidArgument)
		}
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:          cfg.Endpoints,
			TLS:                cfg.TLS,
			Username:           cfg.Username,
			Password:           cfg.Password,
			DialTimeout:        cfg.DialTimeout,
			DialKeepAliveTime:  10 * time.Second,
			MaxCallSendMsgSize: cfg.MaxRequestBytes + 1<<20,
			// A page of a Scan is PageSize keys whatever their size.
			MaxCallRecvMsgSize: math.MaxInt32,
			// The client's own logging would go to stderr, beside the
			// server's structured log; errors reach passman as values.
			Logger: zap.NewNop(),
		})
		if err != nil {
			return nil, fmt.Errorf("etcd store: connect to %s: %w", strings.Join(cfg.Endpoints, ","), err)
		}
		d.cli, d.ownClient = cli, true
	}
	d.route.init(d)
	cctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := d.cli.Get(cctx, d.prefix+"m/store", clientv3.WithSerializable(), clientv3.WithCountOnly()); err != nil {
		d.Close()
		return nil, fmt.Errorf("etcd store: reach %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	if len(cfg.ReadCache) > 0 {
		cctx, cancel := context.WithCancel(context.Background())
		d.stopCaches = cancel
		for _, p := range cfg.ReadCache {
			c := newReadCache(d, p)
			d.caches = append(d.caches, c)
			d.cachesEnded.Go(func() { c.run(cctx) })
		}
	}
	return d, nil
}

// StaleReads reports whether reads are served by the member at hand
// (Config.StaleReads).
func (d *DB) StaleReads() bool { return d.cfg.StaleReads }

// Client is the etcd client, for callers that also watch or elect.
func (d *DB) Client() *clientv3.Client { return d.cli }

// Prefix is the deployment's key prefix.
func (d *DB) Prefix() string { return d.prefix }

// Close waits for transactions in flight and closes the client (unless the
// caller supplied it).
func (d *DB) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.batch.Close()
		d.reads.Close()
		d.inflight.Wait()
		d.route.close()
		if d.stopCaches != nil {
			d.stopCaches()
			d.cachesEnded.Wait()
		}
		if d.ownClient {
			err = d.cli.Close()
		}
	})
	return err
}

func (d *DB) enter() error {
	d.inflight.Add(1)
	if d.closed.Load() {
		d.inflight.Done()
		return ErrClosed
	}
	return nil
}

// View runs fn on one snapshot; see the package comment.
func (d *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.inflight.Done()
	t := d.newTx(ctx, false)
	defer t.end()
	if err := fn(t); err != nil {
		return err
	}
	return t.err
}

// Update runs fn in an optimistic, serializable transaction, running it
// again on a new snapshot while its commit conflicts with another writer's
// (so fn must keep its effects inside tx). fn's error is returned
// unchanged; nothing is written then.
func (d *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	return d.update(ctx, fn, false)
}

// update is Update; blind commits without comparing what fn read, for a
// ReadBatch call run alone: its first read is linearizable, so its reads
// are by themselves (see groupKind.reads), and a key rewritten without
// pause cannot make it lose again and again.
func (d *DB) update(ctx context.Context, fn func(store.Tx) error, blind bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.inflight.Done()
	return d.retry(ctx, func() (bool, error) {
		t := d.newTx(ctx, true)
		t.blind = blind
		defer t.end()
		if err := fn(t); err != nil {
			return false, &fnError{err}
		}
		return d.commit(ctx, t)
	})
}

// fnError carries a transaction function's own error through retry, to be
// returned unchanged.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// retry runs attempt until it commits, fails, or ctx ends. A conflict waits
// a short random time first, so that writers that conflicted do not meet
// again at once.
func (d *DB) retry(ctx context.Context, attempt func() (bool, error)) error {
	backoff := time.Millisecond
	for {
		ok, err := attempt()
		if fe, isFn := err.(*fnError); isFn {
			return fe.err
		}
		if err != nil {
			if !errors.Is(err, ErrCompacted) {
				return err
			}
		} else if ok {
			return nil
		}
		conflicts.Add(1)
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("etcd store: transaction conflicted until %w", ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// conflicts counts transaction attempts that lost to another writer, for
// tests and benchmarks.
var conflicts atomic.Int64

// Conflicts returns how many transaction attempts in this process lost to
// another writer and ran again.
func Conflicts() int64 { return conflicts.Load() }

// commit sends t's buffered writes with the compares its reads call for,
// reporting false on a conflict.
func (d *DB) commit(ctx context.Context, t *tx) (committed bool, err error) {
	defer func() { t.runAfterCommit(committed && err == nil) }()
	if err := t.runBeforeCommit(); err != nil {
		return false, &fnError{err}
	}
	if t.err != nil {
		return false, t.err
	}
	if len(t.writes) == 0 && !t.unverified {
		// Nothing to write: the reads came from one snapshot, which is a
		// serializable outcome by itself.
		return true, nil
	}
	cmps := t.compares()
	ops := make([]clientv3.Op, 0, len(t.writes))
	size := 0
	for _, k := range t.order {
		v := t.writes[k]
		size += len(k)
		if v.del {
			ops = append(ops, clientv3.OpDelete(k))
			continue
		}
		size += len(v.val)
		ops = append(ops, clientv3.OpPut(k, string(v.val)))
	}
	for _, c := range cmps {
		size += len(c.Key) + len(c.RangeEnd)
	}
	if len(cmps) > d.cfg.MaxTxnOps || len(ops) > d.cfg.MaxTxnOps {
		return false, fmt.Errorf("%w: etcd store: a transaction of %d writes and %d reads is over the %d operations etcd takes in one (its --max-txn-ops)", secret.ErrTooLarge, len(ops), len(cmps), d.cfg.MaxTxnOps)
	}
	if size > d.maxTxnB {
		return false, fmt.Errorf("%w: etcd store: a transaction of %d bytes is over the %d a request may carry (etcd's --max-request-bytes less framing)", secret.ErrTooLarge, size, d.maxTxnB)
	}
	if f := store.FenceOf(t.ctx); f != nil {
		ok, err := d.fencedTxn(ctx, f, cmps, ops)
		var fe *fnError
		if err != nil && !errors.As(err, &fe) {
			t.uncertain = len(ops) > 0
		}
		return ok, err
	}
	// Only a Txn that writes goes through raft, hence the leader, and may
	// serve the waiting barrier round; one that only verifies reads is
	// made linearizable instead.
	writes := len(ops) > 0
	var claimed *round
	if writes {
		claimed = d.barrier.claim()
	} else {
		ops = append(ops, d.linearRead())
	}
	var resp *clientv3.TxnResponse
	if len(t.creates) > 0 {
		resp, err = d.sendAgain(ctx, t, cmps, ops)
	} else {
		resp, err = d.route.txn(ctx, cmps, ops)
	}
	if writes {
		d.barrier.committed()
	}
	if err != nil {
		d.finish(claimed, 0, err)
		t.uncertain = writes
		return false, d.etcdError("commit", err)
	}
	d.observe(resp.Header.Revision)
	d.finish(claimed, resp.Header.Revision, nil)
	if resp.Succeeded {
		d.noteCachedWrites(t, resp.Header.Revision)
	}
	return resp.Succeeded, nil
}

// resendAfter is how long a commit that creates a key waits for its
// answer before it is sent again (sendAgain).
const resendAfter = 2 * time.Second

// sendAgain commits a Txn that creates a key, sending it again, identical,
// while its answer is lost: a member that forwarded it to a leader that
// died, a leader that lost its lead, a connection cut. No two attempts
// can both apply: the first to apply creates the marker, and every other
// then fails its compares. An attempt sent again that fails them asks for
// the marker: if it holds the transaction's value, an earlier attempt
// applied, and the commit succeeded. Without this a write sent just after
// the etcd leader died would fail after etcd's request timeout (7 s by
// default) with an outcome nobody knows; with it, it is answered once the
// cluster has a leader again.
func (d *DB) sendAgain(ctx context.Context, t *tx, cmps []clientv3.Cmp, ops []clientv3.Op) (*clientv3.TxnResponse, error) {
	for again := false; ; again = true {
		actx, cancel := context.WithTimeout(ctx, resendAfter)
		resp, err := d.route.txn(actx, cmps, ops)
		cancel()
		switch {
		case err == nil && (resp.Succeeded || !again):
			return resp, nil
		case err == nil:
			return d.appliedBefore(ctx, t, resp)
		case ctx.Err() != nil || !lost(err):
			return nil, err
		}
		resent.Add(1)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// appliedBefore tells, after an attempt sent again failed its compares,
// whether an earlier attempt applied: then its marker holds its value,
// and the commit succeeded.
func (d *DB) appliedBefore(ctx context.Context, t *tx, failed *clientv3.TxnResponse) (*clientv3.TxnResponse, error) {
	k := t.marker()
	g, err := d.cli.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	if len(g.Kvs) == 1 && bytes.Equal(g.Kvs[0].Value, t.writes[k].val) {
		return &clientv3.TxnResponse{Header: g.Header, Succeeded: true}, nil
	}
	return failed, nil
}

// lost reports whether a commit's error leaves its outcome unknown, or
// the request worth sending again: a timeout, a leader lost or changing,
// a member unavailable or too far behind in applying. A refusal (too
// large, not permitted) is final.
func lost(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, rpctypes.ErrTimeout), errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail),
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost), errors.Is(err, rpctypes.ErrNoLeader),
		errors.Is(err, rpctypes.ErrLeaderChanged), errors.Is(err, rpctypes.ErrTimeoutWaitAppliedIndex),
		errors.Is(err, rpctypes.ErrTooManyRequests):
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// resent counts commits sent again (sendAgain), for tests.
var resent atomic.Int64

// linearRead is the op that makes a Txn which writes nothing
// linearizable. etcd answers a Txn whose ops are all ranges from the member
// at hand, at its own applied revision, and waits for the leader's
// ReadIndex first only when one of those ranges is not serializable
// (etcdserver's Txn: IsTxnReadonly, IsTxnSerializable); a Txn of compares
// alone counts as serializable, so a member cut off from the quorum would
// decide its compares on stale state. Counting one key is the cheapest
// range that is not.
func (d *DB) linearRead() clientv3.Op {
	return clientv3.OpGet(d.prefix+"m/store", clientv3.WithCountOnly())
}

// etcdError maps the server's refusals to passman's error classes.
func (d *DB) etcdError(op string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("etcd store: %s: %w", op, err)
	case errors.Is(err, rpctypes.ErrCompacted):
		return fmt.Errorf("etcd store: %s: %w", op, ErrCompacted)
	case errors.Is(err, rpctypes.ErrRequestTooLarge), errors.Is(err, rpctypes.ErrTooManyOps),
		status.Code(err) == codes.ResourceExhausted: // gRPC's own message size limit
		return fmt.Errorf("%w: etcd store: %s: %v (check etcd's --max-request-bytes and --max-txn-ops against passman's)", secret.ErrTooLarge, op, err)
	}
	if d.closed.Load() {
		return fmt.Errorf("etcd store: %s: %w", op, ErrClosed)
	}
	return fmt.Errorf("etcd store: %s: %w", op, err)
}

func checkKey(k []byte) error {
	if len(k) == 0 {
		return fmt.Errorf("%w: empty key", secret.ErrInvalidArgument)
	}
	if len(k) > MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes (at most %d)", secret.ErrTooLarge, len(k), MaxKeySize)
	}
	return nil
}

// prefixEnd is the first key after every key starting with p.
func prefixEnd(p string) string {
	return clientv3.GetPrefixRangeEnd(p)
}
