package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var testBase = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// clock returns a Now func that ticks one second per call, so entry times are
// distinct and predictable.
func clock() func() time.Time {
	var mu sync.Mutex
	t := testBase
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := t
		t = t.Add(time.Second)
		return now
	}
}

func openLog(t testing.TB, path string) *Log {
	t.Helper()
	return openLogSync(t, path, SyncWrite)
}

// openLogSync is openLog with the given sync mode.
func openLogSync(t testing.TB, path string, mode SyncMode) *Log {
	t.Helper()
	l, err := Open(context.Background(), path, Options{Sync: mode, Now: clock()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// sample returns the i-th (0-based) entry of a varied, deterministic set.
func sample(i int) Entry {
	paths := []string{"app/db", "app/api", "infra/db", ""}
	actors := []string{"alice", "bob", "carol"}
	actions := []string{"secret.get", "secret.put", "secret.delete"}
	outcomes := []Outcome{OutcomeSuccess, OutcomeSuccess, OutcomeFailure, OutcomeDenied}
	e := Entry{
		RequestID: "req-" + string(rune('a'+i%26)),
		Actor:     actors[i%len(actors)],
		Action:    actions[i%len(actions)],
		Path:      paths[i%len(paths)],
		Version:   i % 5,
		Outcome:   outcomes[i%len(outcomes)],
	}
	if e.Outcome == OutcomeDenied {
		e.ErrorClass = "permission_denied"
		e.Details = map[string]string{"policy": "deny-all", "reason": "no <matching> rule & \u2028"}
	}
	if e.Action == "secret.put" {
		e.Fingerprint = "hmac-sha256:" + string(rune('0'+i%10))
	}
	return e
}

// writeLog creates a log of n sample entries and returns its path and the
// entries as stored.
func writeLog(t testing.TB, n int) (string, []Entry) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path)
	defer l.Close()
	entries := make([]Entry, 0, n)
	for i := range n {
		e, err := l.Append(context.Background(), sample(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i+1, err)
		}
		entries = append(entries, e)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path, entries
}

// readLines returns the file's lines without newlines; a final line without
// a newline is returned as is.
func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte("\n"))
	}
	return lines
}

// joinLines is the inverse of readLines for a file that ends in a newline.
func joinLines(lines [][]byte) []byte {
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, '\n')
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// decode parses a line that the test knows is a valid entry.
func decode(t testing.TB, line []byte) Entry {
	t.Helper()
	e, reason := decodeLine(line)
	if reason != "" {
		t.Fatalf("decode %q: %s", line, reason)
	}
	return e
}

// reseal encodes e with a freshly computed hash: what an attacker who knows
// the format would write. The result has no newline.
func reseal(t testing.TB, e Entry) []byte {
	t.Helper()
	line, err := seal(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(line, []byte("\n"))
}

// keepHash encodes e but keeps hash as its stored hash: an edit by someone
// who cannot recompute it. The result has no newline.
func keepHash(t testing.TB, e Entry, hash string) []byte {
	t.Helper()
	b, err := encodeUnsealed(&e)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(sealLine(b, hash), []byte("\n"))
}
