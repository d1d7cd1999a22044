package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

func TestParseSyncMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    SyncMode
		wantErr bool
	}{
		{"fsync", SyncFsync, false},
		{"write", SyncWrite, false},
		{"", SyncFsync, false},
		{"FSYNC", "", true},
		{"none", "", true},
	}
	for _, tt := range tests {
		got, err := ParseSyncMode(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSyncMode(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("ParseSyncMode(%q) error %v does not wrap ErrInvalidArgument", tt.in, err)
		}
	}
}

func TestAppendSetsChainFields(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	zone := time.FixedZone("UTC+1", 3600)
	now := time.Date(2025, 1, 2, 3, 4, 5, 6, zone)
	l, err := Open(context.Background(), path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.Head(); got != (Head{}) {
		t.Fatalf("Head of new log = %+v, want zero", got)
	}

	in := sample(0)
	// Caller-supplied chain fields are ignored.
	in.Seq, in.PrevHash, in.Hash = 42, "bogus", "bogus"
	e1, err := l.Append(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if e1.Seq != 1 || e1.PrevHash != genesisHash || !isHashHex(e1.Hash) {
		t.Errorf("entry 1 chain fields = %d %q %q", e1.Seq, e1.PrevHash, e1.Hash)
	}
	if e1.Time.Location() != time.UTC || !e1.Time.Equal(now) {
		t.Errorf("entry 1 time = %v, want %v in UTC", e1.Time, now)
	}

	explicit := time.Date(2024, 6, 1, 12, 0, 0, 123, zone)
	in = sample(1)
	in.Time = explicit
	e2, err := l.Append(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if e2.Seq != 2 || e2.PrevHash != e1.Hash {
		t.Errorf("entry 2 seq %d prev %q; want 2 %q", e2.Seq, e2.PrevHash, e1.Hash)
	}
	if e2.Time.Location() != time.UTC || !e2.Time.Equal(explicit) {
		t.Errorf("entry 2 time = %v, want %v in UTC", e2.Time, explicit)
	}
	if got, want := l.Head(), (Head{Seq: 2, Hash: e2.Hash}); got != want {
		t.Errorf("Head = %+v, want %+v", got, want)
	}
	if l.Path() != path {
		t.Errorf("Path = %q, want %q", l.Path(), path)
	}

	// The file holds exactly the returned entries.
	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("file has %d lines, want 2", len(lines))
	}
	for i, want := range []Entry{e1, e2} {
		var got Entry
		if err := json.Unmarshal(lines[i], &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("line %d differs from returned entry (-returned +file):\n%s", i+1, diff)
		}
	}
}

// The documented hash rule lets an independent tool check a line without
// re-encoding it: empty the hash value and hash the bytes.
func TestHashCoversLineWithHashEmptied(t *testing.T) {
	t.Parallel()
	path, entries := writeLog(t, 8)
	re := regexp.MustCompile(`"hash":"([0-9a-f]{64})"}$`)
	prev := genesisHash
	for i, line := range readLines(t, path) {
		m := re.FindSubmatch(line)
		if m == nil {
			t.Fatalf("line %d does not end with the hash field: %s", i+1, line)
		}
		emptied := re.ReplaceAll(line, []byte(`"hash":""}`))
		sum := sha256.Sum256(emptied)
		if got := hex.EncodeToString(sum[:]); got != string(m[1]) || got != entries[i].Hash {
			t.Errorf("line %d: sha256 of emptied line %s, hash field %s, Append returned %s", i+1, got, m[1], entries[i].Hash)
		}
		if !bytes.Contains(line, []byte(`"prev_hash":"`+prev+`"`)) {
			t.Errorf("line %d does not chain to %s", i+1, prev)
		}
		prev = string(m[1])
	}
}

func TestAppendRejectsInvalidEntries(t *testing.T) {
	t.Parallel()
	big := sample(0)
	big.Details = map[string]string{"pad": strings.Repeat("x", MaxEntrySize)}
	collide := sample(0)
	collide.Details = map[string]string{"k\xff": "1", "k\xfe": "2"}
	farFuture := sample(0)
	farFuture.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"empty outcome", Entry{Actor: "alice", Action: "secret.get"}, "invalid outcome"},
		{"unknown outcome", Entry{Actor: "alice", Action: "secret.get", Outcome: "ok"}, "invalid outcome"},
		{"too large", big, "limit 65536"},
		{"details keys collide", collide, "collide"},
		{"time not encodable", farFuture, "encode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "audit.log")
			l := openLog(t, path)
			defer l.Close()
			_, err := l.Append(context.Background(), tt.e)
			if !errors.Is(err, secret.ErrAudit) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Append error = %v, want ErrAudit containing %q", err, tt.want)
			}
			// A rejected entry writes nothing and does not fail the Log.
			e, err := l.Append(context.Background(), sample(1))
			if err != nil || e.Seq != 1 {
				t.Fatalf("Append after rejection = seq %d, %v; want seq 1", e.Seq, err)
			}
			rep, err := Verify(context.Background(), path, l.Head())
			if err != nil || !rep.OK || rep.Entries != 1 {
				t.Fatalf("Verify = %+v, %v; want OK with 1 entry", rep, err)
			}
		})
	}
}

// An entry of exactly MaxEntrySize bytes is written and verifies; one byte
// more is refused.
func TestAppendSizeLimit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(context.Background(), path, Options{Sync: SyncWrite, Now: func() time.Time { return testBase }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	padded := func(n int) Entry {
		e := sample(0)
		e.Details = map[string]string{"pad": strings.Repeat("x", n)}
		return e
	}
	// Measure the overhead of an entry as Append will encode it.
	probe := padded(0)
	probe.Seq, probe.PrevHash, probe.Time = 1, genesisHash, testBase
	line, err := seal(nil, &probe)
	if err != nil {
		t.Fatal(err)
	}
	fits := MaxEntrySize - (len(line) - 1)

	if _, err := l.Append(context.Background(), padded(fits+1)); !errors.Is(err, secret.ErrAudit) {
		t.Fatalf("Append of MaxEntrySize+1 bytes: error %v, want ErrAudit", err)
	}
	if _, err := l.Append(context.Background(), padded(fits)); err != nil {
		t.Fatalf("Append of MaxEntrySize bytes: %v", err)
	}
	if n := len(readLines(t, path)[0]); n != MaxEntrySize {
		t.Fatalf("line is %d bytes, want %d", n, MaxEntrySize)
	}
	rep, err := Verify(context.Background(), path, l.Head())
	if err != nil || !rep.OK {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestAppendReplacesInvalidUTF8(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	defer l.Close()
	in := sample(0)
	in.Actor = "al\xffice"
	in.Details = map[string]string{"k\xfe": "v\xc3"}
	e, err := l.Append(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if e.Actor != "al\uFFFDice" || e.Details["k\uFFFD"] != "v\uFFFD" {
		t.Errorf("stored actor %q details %q", e.Actor, e.Details)
	}
	in.Details["k\xfe"] = "changed"
	if e.Details["k\uFFFD"] != "v\uFFFD" {
		t.Error("returned entry shares the caller's Details map")
	}
	rep, err := Verify(context.Background(), path, l.Head())
	if err != nil || !rep.OK {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestAppendContextCanceled(t *testing.T) {
	t.Parallel()
	l := openLog(t, filepath.Join(t.TempDir(), "audit.log"))
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Append(ctx, sample(0))
	if !errors.Is(err, secret.ErrAudit) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Append error = %v, want ErrAudit and context.Canceled", err)
	}
	if e, err := l.Append(context.Background(), sample(0)); err != nil || e.Seq != 1 {
		t.Fatalf("Append after cancel = seq %d, %v; want seq 1", e.Seq, err)
	}
}

func TestAppendAfterClose(t *testing.T) {
	t.Parallel()
	l := openLog(t, filepath.Join(t.TempDir(), "audit.log"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), sample(0)); !errors.Is(err, secret.ErrAudit) {
		t.Errorf("Append after Close: error %v, want ErrAudit", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	t.Parallel()
	const goroutines, each = 50, 20
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	defer l.Close()

	seqs := make(chan uint64, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				e, err := l.Append(ctx, sample(g*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- e.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)

	seen := make(map[uint64]bool)
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d returned twice", s)
		}
		seen[s] = true
	}
	for s := uint64(1); s <= goroutines*each; s++ {
		if !seen[s] {
			t.Fatalf("seq %d missing", s)
		}
	}
	rep, err := Verify(ctx, path, l.Head())
	if err != nil || !rep.OK || rep.Entries != goroutines*each || rep.Unconfirmed != 0 {
		t.Fatalf("Verify = %+v, %v; want OK with %d entries", rep, err, goroutines*each)
	}
}

// After a failed write the Log refuses every append until reopened, and the
// reopened Log continues the chain.
func TestWriteFailureIsSticky(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	for i := range 2 {
		if _, err := l.Append(ctx, sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Swap in a read-only descriptor so that write(2) itself fails.
	if err := l.f.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.f = ro

	if _, err := l.Append(ctx, sample(2)); !errors.Is(err, secret.ErrAudit) {
		t.Fatalf("Append on failing file: error %v, want ErrAudit", err)
	}
	for range 2 {
		_, err := l.Append(ctx, sample(3))
		if !errors.Is(err, secret.ErrAudit) || !strings.Contains(err.Error(), "reopened") {
			t.Fatalf("later Append: error %v, want sticky ErrAudit", err)
		}
	}
	if got := l.Head(); got.Seq != 2 {
		t.Errorf("Head after failure = %+v, want seq 2", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openLog(t, path)
	defer l.Close()
	e, err := l.Append(ctx, sample(2))
	if err != nil || e.Seq != 3 {
		t.Fatalf("Append after reopen = seq %d, %v; want 3", e.Seq, err)
	}
	if rep, err := Verify(ctx, path, l.Head()); err != nil || !rep.OK {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestAppendDeferredThenSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLogSync(t, path, SyncFsync)
	for range 3 {
		if _, err := l.AppendDeferred(ctx, Entry{Action: "a", Actor: "x", RequestID: "r", Outcome: OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	// Deferred entries are written but do not count until Sync.
	if l.Head().Seq != 0 || l.head.Seq != 3 {
		t.Fatalf("deferred appends: head %d (written %d), want 0 (3)", l.Head().Seq, l.head.Seq)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if l.Head().Seq != 3 {
		t.Fatalf("after Sync: head %d, want 3", l.Head().Seq)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); !errors.Is(err, secret.ErrAudit) {
		t.Fatalf("Sync after Close: %v", err)
	}
	rep, err := Verify(ctx, path, Head{})
	if err != nil || !rep.OK || rep.Entries != 3 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// Flush writes committed reserved entries for a caller that holds them
// durably elsewhere: readable in the file at once, counted in Head only
// once synced.
func TestFlushWritesWithoutSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLogSync(t, path, SyncFsync)
	defer l.Close()
	res, err := l.Reserve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := res.Seal(Entry{Action: "a", Actor: "x", RequestID: "r", Outcome: OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	if err := res.Commit(); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		n := 0
		if err := Read(ctx, path, Filter{}, func(Entry) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("before Flush the file holds %d entries, want 0", n)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, h := count(), l.Head().Seq; n != 2 || h != 0 {
		t.Fatalf("after Flush: %d entries in the file, head %d; want 2, 0", n, h)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if h := l.Head().Seq; h != 2 {
		t.Fatalf("after Sync: head %d, want 2", h)
	}
}

func TestDecisionRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(ctx, path, Options{Sync: SyncWrite})
	if err != nil {
		t.Fatal(err)
	}
	reasons := []string{"no policy allows read on prod/x for user bob", "bad \xff utf8"}
	got, err := l.Append(ctx, Entry{Action: "secret.get", Actor: "bob", RequestID: "r", Outcome: OutcomeDenied,
		Decision: &Decision{Allow: false, Reasons: reasons, Revision: "sha256:abc"}})
	if err != nil {
		t.Fatal(err)
	}
	reasons[0] = "changed by the caller afterwards"
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var read []Entry
	if err := Read(ctx, path, Filter{}, func(e Entry) error { read = append(read, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(read) != 1 || read[0].Decision == nil || read[0].Decision.Reasons[0] != "no policy allows read on prod/x for user bob" || read[0].Decision.Revision != "sha256:abc" {
		t.Fatalf("decision not stored as appended: %+v", read)
	}
	if got.Hash != read[0].Hash {
		t.Fatal("hash differs after reading back")
	}
	if rep, err := Verify(ctx, path, Head{}); err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// TestConcurrentAppendsShareFsyncs checks the group commit: with many
// concurrent appenders in fsync mode every entry is durable when Append
// returns, and the chain verifies.
func TestConcurrentAppendsShareFsyncs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(ctx, path, Options{Sync: SyncFsync})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 20 {
				e, err := l.Append(ctx, Entry{Action: "secret.get", Actor: "x", RequestID: "r", Outcome: OutcomeSuccess})
				if err != nil {
					t.Error(err)
					return
				}
				if h := l.Head(); h.Seq < e.Seq {
					t.Errorf("Append of %d returned before it counted as written (head %d)", e.Seq, h.Seq)
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, path, Head{})
	if err != nil || !rep.OK || rep.Entries != 640 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
