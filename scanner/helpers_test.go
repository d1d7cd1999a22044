package scanner_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/keyring"
	"github.com/passman-dev/passman/scanner"
	"github.com/passman-dev/passman/secret"
)

// The planted secrets are assembled from pieces so that this repository's
// own source holds no literal a scanner would flag.
var (
	awsKeyID   = "AKIA" + "QYLPMN5HHHFPZAM2"
	awsSecret  = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYQx7vK2mP9w"
	githubPAT  = "ghp_" + strings.Repeat("aB3dE5fG7h", 4)[:36]
	privateKey = "-----BEGIN " + "RSA PRIVATE KEY-----\n" + strings.Repeat("MIIEowIBAAKCAQEAx9", 5) + "\n-----END " + "RSA PRIVATE KEY-----"
	// managedValue is a generated passman value; no gitleaks rule knows it.
	managedValue = "Qx7vK2mP9w" + "L4nR8tZ3yB"
	managedMiss  = "Qx7vK2mP9w" + "L4nR8tZ3yC"
	rawSecrets   = []string{awsKeyID, awsSecret, githubPAT, strings.Repeat("MIIEowIBAAKCAQEAx9", 5), managedValue}
)

// testSeed is a fixed detection seed, so failures reproduce.
var testSeed = bytes.Repeat([]byte{0x5a}, keyring.SeedSize)

// buildIndex exports an index holding managedValue as prod/db/password v2
// (current) and reads it back through fpindex, as the CLI would.
func buildIndex(t *testing.T) *fpindex.Index {
	t.Helper()
	key, err := keyring.NewDetectionKey(testSeed)
	if err != nil {
		t.Fatal(err)
	}
	b := fpindex.NewBuilder("test-store", "", key, time.Time{}, true)
	b.Add([]byte(managedValue), key.Fingerprint([]byte(managedValue)),
		secret.FingerprintMatch{Path: "prod/db/password", Version: 2, Stages: []secret.Stage{secret.StageCurrent}, State: secret.StateActive})
	var buf bytes.Buffer
	if err := fpindex.Write(&buf, b.File()); err != nil {
		t.Fatal(err)
	}
	ix, err := fpindex.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// writeTree creates files (slash-separated relative name -> content) under a
// new temporary directory and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func newScanner(t *testing.T, opts scanner.Options) *scanner.Scanner {
	t.Helper()
	s, err := scanner.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// loc is the part of a Finding most tests compare.
type loc struct {
	File        string
	Line, Col   int
	EndLine     int
	EndCol      int
	Rule        string
	ManagedPath string
	ManagedVer  int
}

func locs(fs []scanner.Finding) []loc {
	var out []loc
	for _, f := range fs {
		l := loc{File: f.File, Line: f.StartLine, Col: f.Column, EndLine: f.EndLine, EndCol: f.EndCol, Rule: f.RuleID}
		if f.Managed != nil {
			l.ManagedPath, l.ManagedVer = f.Managed.Path, f.Managed.Version
		}
		out = append(out, l)
	}
	return out
}
