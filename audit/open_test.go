package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/passman-dev/passman/secret"
)

func TestOpenRejectsUnknownSyncMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	_, err := Open(context.Background(), path, Options{Sync: "sometimes"})
	if !errors.Is(err, secret.ErrInvalidArgument) {
		t.Fatalf("Open error = %v, want ErrInvalidArgument", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open with bad options created the file: %v", err)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	t.Parallel()
	for _, mode := range []SyncMode{SyncFsync, SyncWrite} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "audit.log")
			var last Entry
			for round := range 3 {
				l, err := Open(ctx, path, Options{Sync: mode, Now: clock()})
				if err != nil {
					t.Fatalf("round %d: Open: %v", round, err)
				}
				if got, want := l.Head(), (Head{Seq: last.Seq, Hash: last.Hash}); got != want {
					t.Fatalf("round %d: recovered head %+v, want %+v", round, got, want)
				}
				for range 4 {
					e, err := l.Append(ctx, sample(int(last.Seq)))
					if err != nil {
						t.Fatal(err)
					}
					wantPrev := last.Hash
					if last.Seq == 0 {
						wantPrev = genesisHash
					}
					if e.Seq != last.Seq+1 || e.PrevHash != wantPrev {
						t.Fatalf("round %d: got seq %d prev %s after seq %d hash %s", round, e.Seq, e.PrevHash, last.Seq, last.Hash)
					}
					last = e
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := Verify(ctx, path, Head{Seq: last.Seq, Hash: last.Hash})
			if err != nil || !rep.OK || rep.Entries != 12 {
				t.Fatalf("Verify = %+v, %v; want OK with 12 entries", rep, err)
			}
		})
	}
}

func TestOpenCreatesOnlyTheFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, path)
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if fi.Size() != 0 {
		t.Errorf("new log has %d bytes", fi.Size())
	}

	missing := filepath.Join(dir, "nodir", "audit.log")
	if _, err := Open(context.Background(), missing, Options{}); !errors.Is(err, secret.ErrAudit) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open in missing dir: error %v, want ErrAudit and ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created the directory: %v", err)
	}
}

func TestOpenRejectsDirectory(t *testing.T) {
	t.Parallel()
	if _, err := Open(context.Background(), t.TempDir(), Options{}); !errors.Is(err, secret.ErrAudit) {
		t.Fatalf("Open of a directory: error %v, want ErrAudit", err)
	}
}

func TestOpenIsExclusive(t *testing.T) {
	t.Parallel()
	switch runtime.GOOS {
	case "darwin", "dragonfly", "freebsd", "linux", "netbsd", "openbsd":
	default:
		t.Skip("no flock on", runtime.GOOS)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	if _, err := Open(context.Background(), path, Options{}); !errors.Is(err, secret.ErrAudit) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second Open: error %v, want ErrAudit (locked)", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, path)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsBrokenLastLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		last func(t *testing.T, line []byte) []byte
		want string
	}{
		{"garbage", func(*testing.T, []byte) []byte { return []byte("garbage") }, "not a JSON object"},
		{"truncated JSON", func(_ *testing.T, l []byte) []byte { return l[:len(l)/2] }, "malformed entry"},
		{"edited", func(_ *testing.T, l []byte) []byte {
			return bytes.Replace(l, []byte(`"seq":3`), []byte(`"seq":4`), 1)
		}, "hash mismatch"},
		{"unknown field", func(_ *testing.T, l []byte) []byte {
			return append([]byte(`{"x":1,`), l[1:]...)
		}, "unknown field"},
		{"seq 0", func(t *testing.T, l []byte) []byte {
			e := decode(t, l)
			e.Seq = 0
			return reseal(t, e)
		}, "seq 0"},
		{"overlong", func(*testing.T, []byte) []byte { return bytes.Repeat([]byte("x"), maxLine+1) }, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, _ := writeLog(t, 3)
			lines := readLines(t, path)
			lines[2] = tt.last(t, lines[2])
			want := joinLines(lines)
			writeFile(t, path, want)
			_, err := Open(context.Background(), path, Options{})
			if !errors.Is(err, secret.ErrTampered) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open error = %v, want ErrTampered containing %q", err, tt.want)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
				t.Error("Open modified a tampered log")
			}
		})
	}
}

func TestOpenRepairsTornTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries int
		torn    func(next []byte) []byte // next is the line entry n+1 would have had
	}{
		{"half a line", 5, func(next []byte) []byte { return next[:len(next)/2] }},
		{"one byte", 5, func(next []byte) []byte { return next[:1] }},
		{"all but the newline", 5, func(next []byte) []byte { return next }},
		{"first entry torn", 0, func(next []byte) []byte { return next[:len(next)/2] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path, entries := writeLog(t, tt.entries)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var head Head
			if n := len(entries); n > 0 {
				head = Head{Seq: entries[n-1].Seq, Hash: entries[n-1].Hash}
			}
			next := sample(tt.entries)
			next.Seq, next.PrevHash, next.Time = head.Seq+1, head.Hash, testBase
			if head.Seq == 0 {
				next.PrevHash = genesisHash
			}
			appendFile(t, path, tt.torn(reseal(t, next)))

			l, err := Open(ctx, path, Options{Now: clock()})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer l.Close()
			if got, _ := os.ReadFile(path); !bytes.Equal(got, good) {
				t.Fatalf("after Open the file is %q, want %q", got, good)
			}
			if got := l.Head(); got != head {
				t.Fatalf("Head = %+v, want %+v", got, head)
			}
			e, err := l.Append(ctx, sample(0))
			if err != nil || e.Seq != head.Seq+1 {
				t.Fatalf("Append = seq %d, %v; want %d", e.Seq, err, head.Seq+1)
			}
			rep, err := Verify(ctx, path, l.Head())
			if err != nil || !rep.OK || rep.Entries != head.Seq+1 {
				t.Fatalf("Verify = %+v, %v", rep, err)
			}
		})
	}
}

// A final fragment larger than any single write is not a torn write; Open
// must not destroy it.
func TestOpenRefusesLongPartialLine(t *testing.T) {
	t.Parallel()
	path, _ := writeLog(t, 2)
	appendFile(t, path, bytes.Repeat([]byte("x"), MaxEntrySize+1))
	before, _ := os.ReadFile(path)
	if _, err := Open(context.Background(), path, Options{}); !errors.Is(err, secret.ErrTampered) {
		t.Fatalf("Open error = %v, want ErrTampered", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("Open truncated a fragment that cannot be a torn write")
	}
}
