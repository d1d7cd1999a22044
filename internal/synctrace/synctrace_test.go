package synctrace

import (
	"strings"
	"testing"
)

func parse(t *testing.T, lines ...string) *Trace {
	t.Helper()
	tr, err := Parse(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

const (
	start = `10 write(1<pipe:[7]>, "synctrace:start\n", 16) = 16`
	ack1  = `10 write(1<pipe:[7]>, "synctrace:ack 1\n", 16) = 16`
	ack2  = `10 write(1<pipe:[7]>, "synctrace:ack 2\n", 16) = 16`
	wr    = `11 write(5</d/log>, "{\"seq\":1}\n", 10) = 10`
	pwr   = `11 pwrite64(6</d/db>, "\0\0", 4096, 8192) = 4096`
	fsync = `11 fsync(5</d/log>) = 0`
	fdata = `11 fdatasync(6</d/db>) = 0`
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		files []string
		fail  string // "" means the check passes
	}{
		{"synced", []string{start, wr, fsync, ack1, wr, fsync, ack2}, []string{"/d/log"}, ""},
		{"two files", []string{start, wr, pwr, fdata, fsync, ack1}, []string{"/d/log", "/d/db"}, ""},
		{"no sync", []string{start, wr, ack1}, []string{"/d/log"}, "not synced"},
		{"second ack unsynced", []string{start, wr, fsync, ack1, wr, ack2}, []string{"/d/log"}, "ack 2: /d/log not synced"},
		{"sync after ack", []string{start, wr, ack1, fsync}, []string{"/d/log"}, "not synced"},
		{"other file synced", []string{start, wr, pwr, fdata, ack1}, []string{"/d/log"}, "not synced"},
		{"failed sync", []string{start, wr, `11 fsync(5</d/log>) = -1 EIO (Input/output error)`, ack1}, []string{"/d/log"}, "not synced"},
		{"write before start unsynced", []string{wr, start, pwr, fdata, ack1}, []string{"/d/log", "/d/db"}, "ack 1: no write to /d/log"},
		{"no write", []string{start, wr, fsync, ack1, ack2}, []string{"/d/log"}, "ack 2: no write to /d/log"},
		{"sync began before write returned", []string{
			start,
			`11 write(5</d/log>, "x", 1 <unfinished ...>`,
			`12 fsync(5</d/log> <unfinished ...>`,
			`11 <... write resumed>) = 1`,
			`12 <... fsync resumed>) = 0`,
			ack1,
		}, []string{"/d/log"}, "not synced"},
		{"sync still running at ack", []string{
			start, wr,
			`12 fsync(5</d/log> <unfinished ...>`,
			ack1,
			`12 <... fsync resumed>) = 0`,
		}, []string{"/d/log"}, "not synced"},
		{"interleaved but ordered", []string{
			start,
			`11 write(5</d/log>, "x", 1 <unfinished ...>`,
			`13 futex() = 0`,
			`11 <... write resumed>) = 1`,
			`12 fsync(5</d/log> <unfinished ...>`,
			`+++ exited with 0 +++`,
			`12 <... fsync resumed>) = 0`,
			ack1,
		}, []string{"/d/log"}, ""},
		{"no start", []string{wr, fsync, ack1}, []string{"/d/log"}, "no start marker"},
		{"no ack", []string{start, wr, fsync}, []string{"/d/log"}, "no acknowledgement"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := parse(t, tc.lines...).Check(tc.files...)
			switch {
			case tc.fail == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
				t.Fatalf("Check = %v, want an error containing %q", err, tc.fail)
			}
		})
	}
}

func TestCheckOrder(t *testing.T) {
	ok := parse(t, start, wr, fsync, pwr, fdata, ack1)
	if err := ok.CheckOrder("/d/log", "/d/db"); err != nil {
		t.Fatalf("CheckOrder: %v", err)
	}
	bad := parse(t, start, wr, pwr, fsync, fdata, ack1)
	if err := bad.CheckOrder("/d/log", "/d/db"); err == nil || !strings.Contains(err.Error(), "/d/log not synced") {
		t.Fatalf("CheckOrder = %v, want /d/log not synced", err)
	}
}

func TestParseMalformed(t *testing.T) {
	// A resumed call that never started means the trace is not one Run
	// asked for.
	if _, err := Parse(strings.NewReader("11 <... fsync resumed>) = 0\n")); err == nil {
		t.Fatal("Parse accepted a resumed call without a start")
	}
	if _, err := Parse(strings.NewReader(`11 write(5</d/log>, "x", 1 <unfinished ...>` + "\n11 <... fsync resumed>) = 0\n")); err == nil {
		t.Fatal("Parse accepted a resumed call of another name")
	}
	// Garbage, binary and an overlong line: skipped or refused, never a
	// panic, and never a passing check.
	for _, in := range []string{
		"garbage\n\x00\xff\n(((\n",
		"10 write(\n",
		"10 fsync(5</d/log) = 0\n",
		strings.Repeat("a", maxLine+10) + "\n",
	} {
		tr, err := Parse(strings.NewReader(in))
		if err != nil {
			continue
		}
		if err := tr.Check("/d/log"); err == nil {
			t.Fatalf("Check passed on %.40q", in)
		}
	}
	// A write that never returned is not covered by any sync.
	tr := parse(t, start, `11 write(5</d/log>, "x", 1 <unfinished ...>`, fsync, ack1)
	if err := tr.Check("/d/log"); err == nil {
		t.Fatal("Check passed with a write that never returned")
	}
}
