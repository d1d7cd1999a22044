package managed_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/scanner/managed"
	"github.com/passman-dev/passman/secret"
)

// The matcher must accept the real exported index.
var _ managed.Index = (*fpindex.Index)(nil)

// planted is one managed version a test puts in the index.
type planted struct {
	value   string
	path    string
	version int
	stages  []secret.Stage
}

func (p planted) match() secret.FingerprintMatch {
	return secret.FingerprintMatch{Path: p.path, Version: p.version, Stages: p.stages, State: secret.StateActive}
}

// testSeed is a fixed detection seed, so failures reproduce.
var testSeed = bytes.Repeat([]byte{0x5a}, keyring.SeedSize)

// buildIndex exports an index of versions in the local form with a real
// detection key and reads it back through fpindex, exactly as a scan of a
// local store would.
func buildIndex(tb testing.TB, versions []planted) *fpindex.Index {
	tb.Helper()
	return export(tb, versions, true)
}

// buildShareable is buildIndex in the shareable form: prefixes only.
func buildShareable(tb testing.TB, versions []planted) *fpindex.Index {
	tb.Helper()
	return export(tb, versions, false)
}

func export(tb testing.TB, versions []planted, local bool) *fpindex.Index {
	tb.Helper()
	key, err := keyring.NewDetectionKey(testSeed)
	if err != nil {
		tb.Fatal(err)
	}
	b := fpindex.NewBuilder("test-store", "", key, time.Time{}, local)
	for _, v := range versions {
		b.Add([]byte(v.value), key.Fingerprint([]byte(v.value)), v.match())
	}
	var buf bytes.Buffer
	if err := fpindex.Write(&buf, b.File()); err != nil {
		tb.Fatal(err)
	}
	ix, err := fpindex.Read(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	return ix
}

// found is a confirmed candidate, as the scanner reports it.
type found struct {
	Line, Column, Length int
	Secret               secret.FingerprintMatch
}

// harness finds candidates and confirms them with the (local-form) index,
// as the scanner does with the store.
type harness struct {
	m  *managed.Matcher
	ix *fpindex.Index
}

func newHarness(tb testing.TB, versions []planted) harness {
	ix := buildIndex(tb, versions)
	return harness{managed.New(ix), ix}
}

func (h harness) find(tb testing.TB, text []byte) []found {
	tb.Helper()
	var out []found
	for _, c := range h.m.Find(text) {
		fp := hex.EncodeToString(c.Fingerprint[:])
		conf, err := h.ix.ConfirmFingerprints(context.Background(), []string{fp})
		if err != nil {
			tb.Fatal(err)
		}
		if len(conf.Matches[fp]) == 0 {
			tb.Fatalf("the local-form index gave a candidate it does not confirm at %d:%d", c.Line, c.Column)
		}
		for _, m := range conf.Matches[fp] {
			out = append(out, found{c.Line, c.Column, c.Length, m})
		}
	}
	return out
}
