package managed_test

import (
	"bytes"
	"testing"

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

// buildIndex exports an index of versions with a real detection key and
// reads it back through fpindex, exactly as the scanner would.
func buildIndex(tb testing.TB, versions []planted) *fpindex.Index {
	tb.Helper()
	key, err := keyring.NewDetectionKey(testSeed)
	if err != nil {
		tb.Fatal(err)
	}
	f := fpindex.File{StoreID: "test-store", DetectionKey: key.Bytes()}
	for _, v := range versions {
		f.Entries = append(f.Entries, fpindex.Entry{
			Fingerprint: key.Fingerprint([]byte(v.value)),
			Path:        v.path,
			Version:     v.version,
			Stages:      v.stages,
			State:       secret.StateActive,
			Length:      len(v.value),
		})
	}
	var buf bytes.Buffer
	if err := fpindex.Write(&buf, f); err != nil {
		tb.Fatal(err)
	}
	ix, err := fpindex.Read(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	return ix
}
