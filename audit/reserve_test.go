package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/passman-dev/passman/secret"
)

// Reserved entries reach the log only when committed; aborted ones leave
// no trace and their sequence numbers go to the next entries; appends wait
// while a reservation is open and chain after what it committed.
func TestReservationCommitAbort(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	defer l.Close()
	if _, err := l.Append(ctx, sample(0)); err != nil {
		t.Fatal(err)
	}
	r, err := l.Reserve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := r.Seal(sample(1))
	if err != nil || e.Seq != 2 || r.Prev().Seq != 1 {
		t.Fatalf("sealed %+v, %v (prev %d)", e, err, r.Prev().Seq)
	}
	r.Abort()
	r.Abort() // twice is harmless
	if _, err := r.Seal(sample(2)); err == nil {
		t.Fatal("sealed into an ended reservation")
	}

	r, err = l.Reserve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 4; i++ {
		if _, err := r.Seal(sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	appended := make(chan Entry)
	go func() {
		e, err := l.Append(ctx, sample(4))
		if err != nil {
			t.Error(err)
		}
		appended <- e
	}()
	select {
	case <-appended:
		t.Fatal("an append went through an open reservation")
	case <-time.After(50 * time.Millisecond):
	}
	if err := r.Commit(); err != nil {
		t.Fatal(err)
	}
	if e := <-appended; e.Seq != 4 {
		t.Fatalf("append after the reservation got seq %d, want 4", e.Seq)
	}
	rep, err := Verify(ctx, path, l.Head())
	if err != nil || !rep.OK || rep.Entries != 4 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	data, _ := os.ReadFile(path)
	if bytes.Count(data, []byte("\n")) != 4 {
		t.Fatalf("log holds %d lines, want 4", bytes.Count(data, []byte("\n")))
	}
}

// Adopt takes lines that continue the chain and refuses any that do not.
func TestAdopt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := openLog(t, filepath.Join(dir, "src.log"))
	for i := range 5 {
		if _, err := src.Append(ctx, sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	src.Close()
	data, err := os.ReadFile(filepath.Join(dir, "src.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))[:5]
	dst := filepath.Join(dir, "dst.log")
	if err := os.WriteFile(dst, bytes.Join(lines[:2], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dst)
	defer l.Close()
	// A gap, a changed line, and a line of another position are refused.
	changed := bytes.Replace(bytes.Clone(lines[2]), []byte(`"actor":"`), []byte(`"actor":"x`), 1)
	for name, in := range map[string][][]byte{"gap": lines[3:], "changed": {changed}, "replayed": lines[1:3]} {
		if _, err := l.Adopt(ctx, in); !errors.Is(err, secret.ErrTampered) {
			t.Errorf("%s: %v, want tampered", name, err)
		}
	}
	if l.Head().Seq != 2 {
		t.Fatalf("refused adoptions moved the head to %d", l.Head().Seq)
	}
	h, err := l.Adopt(ctx, lines[2:])
	if err != nil || h.Seq != 5 {
		t.Fatalf("adopt: %+v, %v", h, err)
	}
	rep, err := Verify(ctx, dst, h)
	if err != nil || !rep.OK || rep.Entries != 5 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// A reservation's lines are the entries exactly as the log holds them.
func TestReservationLinesAreTheLogs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	defer l.Close()
	res, err := l.Reserve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := res.Seal(sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	lines := res.Lines()
	if err := res.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Join(lines, nil); len(lines) != 3 || !bytes.Equal(got, file) {
		t.Fatalf("reservation's lines:\n%s\nthe log:\n%s", got, file)
	}
}
