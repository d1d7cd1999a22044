package audit

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

func seqsOf(entries []Entry) []uint64 {
	s := []uint64{}
	for _, e := range entries {
		s = append(s, e.Seq)
	}
	return s
}

// The sample log: entry i+1 is sample(i) at testBase + i seconds.
//
//	seq:     1        2        3        4        5        6        7        8        9        10       11       12
//	path:    app/db   app/api  infra/db ""       app/db   app/api  infra/db ""       app/db   app/api  infra/db ""
//	actor:   alice    bob      carol    alice    bob      carol    alice    bob      carol    alice    bob      carol
//	action:  get      put      delete   get      put      delete   get      put      delete   get      put      delete
//	outcome: success  success  failure  denied   success  success  failure  denied   success  success  failure  denied
func TestReadFilters(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 12)
	at := func(seq int) time.Time { return testBase.Add(time.Duration(seq-1) * time.Second) }
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"everything", Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"path", Filter{Path: "app/db"}, []uint64{1, 5, 9}},
		{"path prefix", Filter{PathPrefix: "app/"}, []uint64{1, 2, 5, 6, 9, 10}},
		{"path and prefix", Filter{Path: "app/db", PathPrefix: "infra/"}, []uint64{}},
		{"actor", Filter{Actor: "bob"}, []uint64{2, 5, 8, 11}},
		{"action", Filter{Action: "secret.put"}, []uint64{2, 5, 8, 11}},
		{"outcome", Filter{Outcome: OutcomeDenied}, []uint64{4, 8, 12}},
		{"since is inclusive", Filter{Since: at(10)}, []uint64{10, 11, 12}},
		{"until is exclusive", Filter{Until: at(3)}, []uint64{1, 2}},
		{"since and until", Filter{Since: at(4), Until: at(7)}, []uint64{4, 5, 6}},
		{"since in another zone", Filter{Since: at(12).In(time.FixedZone("X", -7200))}, []uint64{12}},
		{"conditions are ANDed", Filter{PathPrefix: "app/", Actor: "bob", Outcome: OutcomeSuccess}, []uint64{2, 5}},
		{"no match", Filter{Actor: "mallory"}, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []Entry
			err := Read(context.Background(), path, tt.f, func(e Entry) error {
				got = append(got, e)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, seqsOf(got)); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadReturnsStoredEntries(t *testing.T) {
	t.Parallel()
	path, entries := writeLog(t, 6)
	var got []Entry
	if err := Read(context.Background(), path, Filter{}, func(e Entry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(entries, got); diff != "" {
		t.Errorf("Read differs from what Append returned (-appended +read):\n%s", diff)
	}
}

func TestReadStopsAtTampering(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 6)
	lines := readLines(t, path)
	e := decode(t, lines[3])
	e.Actor = "mallory"
	lines[3] = keepHash(t, e, e.Hash)
	writeFile(t, path, joinLines(lines))

	var got []Entry
	err := Read(context.Background(), path, Filter{}, func(e Entry) error {
		got = append(got, e)
		return nil
	})
	if !errors.Is(err, secret.ErrTampered) || !strings.Contains(err.Error(), "line 4:") {
		t.Fatalf("Read error = %v, want ErrTampered naming line 4", err)
	}
	if diff := cmp.Diff([]uint64{1, 2, 3}, seqsOf(got)); diff != "" {
		t.Errorf("entries before the break (-want +got):\n%s", diff)
	}
	if _, err := Tail(context.Background(), path, 2, Filter{}); !errors.Is(err, secret.ErrTampered) {
		t.Errorf("Tail error = %v, want ErrTampered", err)
	}
}

func TestReadRejectsMalformedLine(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 3)
	appendFile(t, path, []byte("not json\n"))
	err := Read(context.Background(), path, Filter{}, func(Entry) error { return nil })
	if !errors.Is(err, secret.ErrTampered) || !strings.Contains(err.Error(), "line 4:") {
		t.Fatalf("Read error = %v, want ErrTampered naming line 4", err)
	}
}

// A final line without a newline is an append in progress or a torn write,
// not an entry.
func TestReadEndsBeforeTornFinalLine(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 3)
	appendFile(t, path, []byte(`{"seq":4,"ti`))
	var n int
	if err := Read(context.Background(), path, Filter{}, func(Entry) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("Read returned %d entries, want 3", n)
	}
}

func TestReadReturnsCallbackError(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 5)
	stop := errors.New("stop")
	var n int
	err := Read(context.Background(), path, Filter{}, func(Entry) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("Read = %v after %d entries, want the callback's error after 2", err, n)
	}
}

func TestReadErrors(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 2)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	nop := func(Entry) error { return nil }
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"missing file", Read(context.Background(), filepath.Join(t.TempDir(), "nope"), Filter{}, nop), os.ErrNotExist},
		{"bad outcome filter", Read(context.Background(), path, Filter{Outcome: "ok"}, nop), secret.ErrInvalidArgument},
		{"canceled", Read(canceled, path, Filter{}, nop), context.Canceled},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: error = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 12)
	tests := []struct {
		name string
		n    int
		f    Filter
		want []uint64
	}{
		{"last 3", 3, Filter{}, []uint64{10, 11, 12}},
		{"last 1", 1, Filter{}, []uint64{12}},
		{"exactly all", 12, Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"more than all", math.MaxInt, Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"filtered", 2, Filter{Actor: "bob"}, []uint64{8, 11}},
		{"filtered, wraps the ring several times", 3, Filter{PathPrefix: "app/"}, []uint64{6, 9, 10}},
		{"no match", 5, Filter{Actor: "mallory"}, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Tail(context.Background(), path, tt.n, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, seqsOf(got)); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTailRejectsNonPositiveN(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 2)
	for _, n := range []int{0, -1} {
		if _, err := Tail(context.Background(), path, n, Filter{}); !errors.Is(err, secret.ErrInvalidArgument) {
			t.Errorf("Tail(n=%d) error = %v, want ErrInvalidArgument", n, err)
		}
	}
}
