package scanner_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/internal/benchrepo"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// benchRepo builds the 1,000-commit benchmark repository
// (internal/benchrepo): real code and churn from this module's dependencies.
func benchRepo(b *testing.B) string {
	if _, err := exec.LookPath("git"); err != nil {
		b.Skip("git not installed")
	}
	ctx := context.Background()
	sources, err := benchrepo.SourceDirs(ctx, "..")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if _, err := benchrepo.Build(ctx, dir, benchrepo.Options{Commits: 1000, Seed: 1, Sources: sources}); err != nil {
		b.Fatal(err)
	}
	return dir
}

// benchIndex returns a fingerprint index of n random values whose lengths
// spread over 12–51 bytes, as a large store's would (those under 16 bytes
// are withheld by the export rule), in the local or the shareable form.
func benchIndex(tb testing.TB, n int, local bool) *fpindex.Index {
	seed := make([]byte, keyring.SeedSize)
	rand.Read(seed)
	key, err := keyring.NewDetectionKey(seed)
	if err != nil {
		tb.Fatal(err)
	}
	b := fpindex.NewBuilder("bench", "", key, time.Now(), local)
	for i := range n {
		v := make([]byte, 6+i%20)
		rand.Read(v)
		s := []byte(hex.EncodeToString(v))
		b.Add(s, key.Fingerprint(s), secret.FingerprintMatch{Path: fmt.Sprintf("b/s%06d", i),
			Version: 1, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive})
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

// BenchmarkScanGit scans the full history of a 1,000-commit benchmark
// repository, without and with a 100,000-fingerprint managed index; MB/s
// counts the added lines scanned.
func BenchmarkScanGit(b *testing.B) {
	repo := benchRepo(b)
	for _, bc := range []struct {
		name      string
		managed   bool
		shareable bool
	}{{"rules", false, false}, {"rules+managed100k", true, false}, {"rules+managed100k/shareable", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			opts := scanner.Options{}
			if bc.managed {
				ix := benchIndex(b, 100_000, !bc.shareable)
				opts.Managed = ix
				if bc.shareable {
					// The store's answers, without a store: the
					// shareable index's candidates confirmed by the
					// local form of the same values.
					opts.Confirm = benchIndex(b, 0, true)
				}
			}
			s, err := scanner.New(opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				_, st, err := s.ScanGit(context.Background(), repo, scanner.GitOptions{})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(st.Bytes)
			}
		})
	}
}
