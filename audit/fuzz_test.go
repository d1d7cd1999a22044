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

// FuzzVerifyReader feeds arbitrary bytes and anchors to VerifyReader, which
// must never panic, must fail only for an invalid anchor, and must return a
// self-consistent report that agrees with Read.
func FuzzVerifyReader(f *testing.F) {
	path, entries := writeLog(f, 3)
	valid, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.SplitAfter(valid, []byte("\n"))
	head := entries[2]
	f.Add(valid, uint64(0), "")
	f.Add(valid, head.Seq, head.Hash)
	f.Add(valid, uint64(2), entries[1].Hash)
	f.Add(valid, uint64(5), head.Hash)
	f.Add(valid[:len(valid)-1], uint64(0), "")
	f.Add(valid[:len(valid)/2], uint64(0), "")
	f.Add(bytes.Join([][]byte{lines[1], lines[0], lines[2]}, nil), uint64(0), "")
	f.Add(bytes.Join([][]byte{lines[0], lines[2]}, nil), uint64(0), "")
	f.Add(bytes.Replace(valid, []byte("alice"), []byte("mallory"), 1), uint64(0), "")
	f.Add(append([]byte(`{"extra":1,`), valid[1:]...), uint64(0), "")
	f.Add([]byte(""), uint64(0), "")
	f.Add([]byte("\n"), uint64(0), "")
	f.Add([]byte("{}\n"), uint64(0), "")
	f.Add([]byte("null\n"), uint64(0), "")
	f.Add([]byte(`{"seq":1,"seq":1}`+"\n"), uint64(0), "")

	f.Fuzz(func(t *testing.T, data []byte, anchorSeq uint64, anchorHash string) {
		anchor := Head{Seq: anchorSeq, Hash: anchorHash}
		rep, err := VerifyReader(context.Background(), bytes.NewReader(data), anchor)
		if err != nil {
			if checkAnchor(anchor) == nil || !errors.Is(err, secret.ErrInvalidArgument) {
				t.Fatalf("VerifyReader error %v for anchor %+v", err, anchor)
			}
			return
		}
		if rep.OK != (rep.Broken == nil) {
			t.Fatalf("OK = %v but Broken = %+v", rep.OK, rep.Broken)
		}
		if rep.Entries != rep.Head.Seq {
			t.Fatalf("Entries = %d but Head.Seq = %d", rep.Entries, rep.Head.Seq)
		}
		if rep.Anchor != anchor {
			t.Fatalf("Anchor = %+v, want %+v", rep.Anchor, anchor)
		}
		var wantUnconfirmed uint64
		if rep.Head.Seq > anchor.Seq {
			wantUnconfirmed = rep.Head.Seq - anchor.Seq
		}
		if rep.Unconfirmed != wantUnconfirmed {
			t.Fatalf("Unconfirmed = %d, want %d", rep.Unconfirmed, wantUnconfirmed)
		}
		if rep.Broken != nil && (rep.Broken.Line < 1 || rep.Broken.Seq < 1 || rep.Broken.Reason == "") {
			t.Fatalf("incomplete Broken %+v", *rep.Broken)
		}
		if !rep.OK {
			return
		}
		if anchor.Seq > rep.Head.Seq {
			t.Fatalf("OK with anchor %d beyond head %d", anchor.Seq, rep.Head.Seq)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			t.Fatal("OK for a log without a final newline")
		}
		// Read must accept exactly what Verify accepts.
		var n uint64
		var last Head
		if err := scan(context.Background(), bytes.NewReader(data), func(e Entry) error {
			n++
			last = Head{Seq: e.Seq, Hash: e.Hash}
			return nil
		}); err != nil || n != rep.Entries || last != rep.Head {
			t.Fatalf("Read saw %d entries ending %+v (%v); Verify %d ending %+v", n, last, err, rep.Entries, rep.Head)
		}
	})
}

// FuzzAppendVerify appends arbitrary entry contents through a real Log and
// checks that whatever Append accepts, Verify accepts, and whatever it
// refuses is refused with ErrAudit without failing the Log.
func FuzzAppendVerify(f *testing.F) {
	f.Add("req-1", "alice", "secret.put", "app/db", 3, uint8(0), "", "hmac:ab", "reason", "ok", int64(1_700_000_000), int64(5))
	f.Add("", "", "", "", 0, uint8(3), "x", "", "", "", int64(0), int64(0))
	f.Add("\xff", "<b>&", "\u2028", "a\x00b", -1, uint8(2), "\"\\", "\t", "k\xfe", "v\xc3", int64(-62135596800), int64(999999999))
	f.Add("r", "a", "b", "c", 1, uint8(1), "", "", "", "", int64(253402300800), int64(0))

	f.Fuzz(func(t *testing.T, reqID, actor, action, path string, version int, outcome uint8,
		errClass, fp, dk, dv string, sec, nsec int64) {
		e := Entry{
			RequestID: reqID, Actor: actor, Action: action, Path: path, Version: version,
			Outcome:    []Outcome{OutcomeSuccess, OutcomeFailure, OutcomeDenied, "bogus"}[outcome%4],
			ErrorClass: errClass, Fingerprint: fp, Time: time.Unix(sec, nsec),
		}
		if dk != "" || dv != "" {
			e.Details = map[string]string{dk: dv, "fixed": "x"}
		}
		file := filepath.Join(t.TempDir(), "audit.log")
		ctx := context.Background()
		l, err := Open(ctx, file, Options{Sync: SyncWrite})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, err := l.Append(ctx, e); err != nil {
			if !errors.Is(err, secret.ErrAudit) {
				t.Fatalf("Append error %v does not wrap ErrAudit", err)
			}
			if _, err := l.Append(ctx, Entry{Outcome: OutcomeSuccess}); err != nil {
				t.Fatalf("Append after a refused entry: %v", err)
			}
		}
		if _, err := l.Append(ctx, e); err != nil && !errors.Is(err, secret.ErrAudit) {
			t.Fatalf("second Append error %v does not wrap ErrAudit", err)
		}
		rep, err := Verify(ctx, file, l.Head())
		if err != nil || !rep.OK {
			t.Fatalf("Verify = %+v, %v", rep, err)
		}
	})
}
