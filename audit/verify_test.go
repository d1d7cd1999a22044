package audit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/passman-dev/passman/secret"
)

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	const n = 10
	// Edits use 0-based indexes into lines; entry k is lines[k-1].
	tests := []struct {
		name     string
		edit     func(t *testing.T, lines [][]byte) [][]byte
		anchor   func(real Head) Head // nil: the real head
		wantSeq  uint64
		wantLine int
		want     string
	}{
		{
			name: "field edited",
			edit: func(t *testing.T, l [][]byte) [][]byte {
				e := decode(t, l[3])
				e.Actor = "mallory"
				l[3] = keepHash(t, e, e.Hash)
				return l
			},
			wantSeq: 4, wantLine: 4, want: "hash mismatch (entry edited)",
		},
		{
			name: "field edited and own hash recomputed",
			edit: func(t *testing.T, l [][]byte) [][]byte {
				e := decode(t, l[3])
				e.Outcome = OutcomeSuccess
				e.Actor = "mallory"
				l[3] = reseal(t, e)
				return l
			},
			wantSeq: 5, wantLine: 5, want: "prev_hash mismatch (entry deleted or reordered)",
		},
		{
			name:    "middle line deleted",
			edit:    func(_ *testing.T, l [][]byte) [][]byte { return slices.Delete(l, 3, 4) },
			wantSeq: 4, wantLine: 4, want: "sequence gap: want 4, got 5",
		},
		{
			name: "middle line deleted and later entries renumbered",
			edit: func(t *testing.T, l [][]byte) [][]byte {
				l = slices.Delete(l, 3, 4)
				for i := 3; i < len(l); i++ {
					e := decode(t, l[i])
					e.Seq--
					l[i] = reseal(t, e)
				}
				return l
			},
			wantSeq: 4, wantLine: 4, want: "prev_hash mismatch (entry deleted or reordered)",
		},
		{
			name: "two lines swapped",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3], l[4] = l[4], l[3]
				return l
			},
			wantSeq: 4, wantLine: 4, want: "sequence gap: want 4, got 5",
		},
		{
			name: "entry edited and whole chain after it rebuilt",
			edit: func(t *testing.T, l [][]byte) [][]byte {
				prev := decode(t, l[2]).Hash
				for i := 3; i < len(l); i++ {
					e := decode(t, l[i])
					if i == 3 {
						e.Actor = "mallory"
					}
					e.PrevHash = prev
					l[i] = reseal(t, e)
					prev = decode(t, l[i]).Hash
				}
				return l
			},
			wantSeq: 10, wantLine: 10, want: "entry 10 does not match the head recorded in the store",
		},
		{
			name:    "last 3 lines cut off",
			edit:    func(_ *testing.T, l [][]byte) [][]byte { return l[:len(l)-3] },
			wantSeq: 8, wantLine: 8, want: "log ends at seq 7 but the store records head seq 10 (truncated)",
		},
		{
			name:    "anchor hash differs",
			anchor:  func(h Head) Head { return Head{Seq: h.Seq, Hash: strings.Repeat("ab", 32)} },
			wantSeq: 10, wantLine: 10, want: "entry 10 does not match the head recorded in the store",
		},
		{
			name:    "anchor in the middle differs",
			anchor:  func(Head) Head { return Head{Seq: 6, Hash: strings.Repeat("ab", 32)} },
			wantSeq: 6, wantLine: 6, want: "entry 6 does not match the head recorded in the store",
		},
		{
			name: "unknown field added",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = append([]byte(`{"note":"hi",`), l[3][1:]...)
				return l
			},
			wantSeq: 4, wantLine: 4, want: `malformed entry: json: unknown field "note"`,
		},
		{
			name: "garbage line",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = []byte("rm -rf /")
				return l
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: not a JSON object",
		},
		{
			name: "truncated JSON",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = l[3][:40]
				return l
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: unexpected EOF",
		},
		{
			name: "JSON null",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = []byte("null")
				return l
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: not a JSON object",
		},
		{
			name: "blank line inserted",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				return slices.Insert(l, 3, []byte{})
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: empty line",
		},
		{
			name: "overlong line",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = bytes.Repeat([]byte("a"), 1<<20)
				return l
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: line exceeds",
		},
		{
			name: "overlong line that is valid JSON",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = append(append([]byte("{"), bytes.Repeat([]byte(" "), 1<<20)...), l[3][1:]...)
				return l
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: line exceeds",
		},
		{
			name: "whitespace added, hash still valid",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = bytes.Replace(l[3], []byte(`,"actor":`), []byte(`, "actor": `), 1)
				return l
			},
			wantSeq: 4, wantLine: 4, want: "non-canonical encoding (entry edited)",
		},
		{
			// encoding/json keeps the last of duplicate keys, other readers
			// the first: a reader-dependent edit.
			name: "duplicate key",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = append([]byte(`{"actor":"mallory",`), l[3][1:]...)
				return l
			},
			wantSeq: 4, wantLine: 4, want: "non-canonical encoding (entry edited)",
		},
		{
			name: "key case changed",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = bytes.Replace(l[3], []byte(`"actor":`), []byte(`"Actor":`), 1)
				return l
			},
			wantSeq: 4, wantLine: 4, want: "non-canonical encoding (entry edited)",
		},
		{
			name: "carriage return",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				l[3] = append(l[3], '\r')
				return l
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: data after the JSON object",
		},
		{
			name: "time not UTC",
			edit: func(t *testing.T, l [][]byte) [][]byte {
				e := decode(t, l[3])
				e.Time = e.Time.In(time.FixedZone("X", 3600))
				l[3] = reseal(t, e)
				return l
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: time is not UTC",
		},
		{
			name: "hash in upper case",
			edit: func(t *testing.T, l [][]byte) [][]byte {
				h := decode(t, l[3]).Hash
				l[3] = bytes.Replace(l[3], []byte(h), []byte(strings.ToUpper(h)), 1)
				return l
			},
			wantSeq: 4, wantLine: 4, want: "malformed entry: hash is not 64 lowercase hex digits",
		},
		{
			name: "unknown outcome",
			edit: func(t *testing.T, l [][]byte) [][]byte {
				e := decode(t, l[3])
				e.Outcome = "maybe"
				l[3] = reseal(t, e)
				return l
			},
			wantSeq: 4, wantLine: 4, want: `malformed entry: unknown outcome "maybe"`,
		},
		{
			name: "first entry does not start at genesis",
			edit: func(t *testing.T, l [][]byte) [][]byte {
				e := decode(t, l[0])
				e.PrevHash = strings.Repeat("1", 64)
				l[0] = reseal(t, e)
				return l
			},
			wantSeq: 1, wantLine: 1, want: "prev_hash mismatch",
		},
		{
			name: "log starts at seq 2",
			edit: func(_ *testing.T, l [][]byte) [][]byte {
				return l[1:]
			},
			wantSeq: 1, wantLine: 1, want: "sequence gap: want 1, got 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, entries := writeLog(t, n)
			real := Head{Seq: entries[n-1].Seq, Hash: entries[n-1].Hash}
			anchor := real
			if tt.anchor != nil {
				anchor = tt.anchor(real)
			}
			if tt.edit != nil {
				writeFile(t, path, joinLines(tt.edit(t, readLines(t, path))))
			}
			rep, err := Verify(context.Background(), path, anchor)
			if err != nil {
				t.Fatalf("Verify error: %v", err)
			}
			checkBroken(t, rep, anchor, tt.wantSeq, tt.wantLine, tt.want)
		})
	}
}

// The final line of a log without a newline is a torn write: Open would
// remove it, Verify reports it.
func TestVerifyTornFinalLine(t *testing.T) {
	t.Parallel()
	path, entries := writeLog(t, 10)
	b, _ := os.ReadFile(path)
	writeFile(t, path, b[:len(b)-1])
	anchor := Head{Seq: 9, Hash: entries[8].Hash}
	rep, err := Verify(context.Background(), path, anchor)
	if err != nil {
		t.Fatal(err)
	}
	checkBroken(t, rep, anchor, 10, 10, "malformed entry: torn final line")
}

func checkBroken(t *testing.T, rep Report, anchor Head, seq uint64, line int, reason string) {
	t.Helper()
	if rep.OK || rep.Broken == nil {
		t.Fatalf("Verify = %+v, want a break", rep)
	}
	if rep.Broken.Seq != seq || rep.Broken.Line != line || !strings.Contains(rep.Broken.Reason, reason) {
		t.Errorf("Broken = %+v, want seq %d line %d reason containing %q", *rep.Broken, seq, line, reason)
	}
	// Entries counts the valid prefix: everything before the break, or up to
	// and including a chain-valid entry that disagrees with the anchor.
	wantEntries := seq - 1
	if strings.Contains(reason, "does not match") {
		wantEntries = seq
	}
	if rep.Entries != wantEntries || rep.Head.Seq != wantEntries || rep.Anchor != anchor {
		t.Errorf("Report = %+v, want %d entries and anchor %+v", rep, wantEntries, anchor)
	}
}

func TestVerifyAnchors(t *testing.T) {
	t.Parallel()
	path, entries := writeLog(t, 5)
	head := func(seq uint64) Head { return Head{Seq: seq, Hash: entries[seq-1].Hash} }
	tests := []struct {
		name   string
		anchor Head
		want   Report
	}{
		{"no anchor", Head{}, Report{Entries: 5, Head: head(5), Unconfirmed: 5, OK: true}},
		{"anchor at head", head(5), Report{Entries: 5, Head: head(5), Anchor: head(5), OK: true}},
		{"entries after anchor", head(3), Report{Entries: 5, Head: head(5), Anchor: head(3), Unconfirmed: 2, OK: true}},
		{"anchor at first entry", head(1), Report{Entries: 5, Head: head(5), Anchor: head(1), Unconfirmed: 4, OK: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Verify(context.Background(), path, tt.anchor)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	t.Parallel()
	someHash := strings.Repeat("cd", 32)
	tests := []struct {
		name   string
		anchor Head
		want   Report
	}{
		{"no anchor", Head{}, Report{OK: true}},
		{"store has a head", Head{Seq: 3, Hash: someHash}, Report{
			Anchor: Head{Seq: 3, Hash: someHash},
			Broken: &Break{Seq: 1, Line: 1, Reason: "log ends at seq 0 but the store records head seq 3 (truncated)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := VerifyReader(context.Background(), strings.NewReader(""), tt.anchor)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("VerifyReader (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	path, entries := writeLog(t, 3)
	good, _ := os.ReadFile(path)
	boom := errors.New("boom")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	tests := []struct {
		name string
		run  func() (Report, error)
		want error
	}{
		{"missing file", func() (Report, error) {
			return Verify(bg, filepath.Join(t.TempDir(), "nope"), Head{})
		}, os.ErrNotExist},
		{"read error", func() (Report, error) {
			return VerifyReader(bg, io.MultiReader(bytes.NewReader(good), iotest.ErrReader(boom)), Head{})
		}, boom},
		{"canceled", func() (Report, error) { return Verify(canceled, path, Head{}) }, context.Canceled},
		{"anchor hash without seq", func() (Report, error) {
			return Verify(bg, path, Head{Hash: entries[0].Hash})
		}, secret.ErrInvalidArgument},
		{"anchor hash not hex", func() (Report, error) {
			return Verify(bg, path, Head{Seq: 1, Hash: "xyz"})
		}, secret.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := tt.run(); !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
}
