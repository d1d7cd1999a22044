package rotation_test

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	"github.com/passman-dev/passman/core"
	"github.com/passman-dev/passman/fpindex"
	"github.com/passman-dev/passman/scanner"
)

// newRepo makes an empty git repository and returns it with a function
// running git in it as a fixed author.
func newRepo(tb testing.TB) (string, func(args ...string)) {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Skip("git not installed")
	}
	repo := tb.TempDir()
	git := func(args ...string) {
		tb.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=dev", "-c", "user.email=dev@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			tb.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	return repo, git
}

// scanManaged scans repo's history for l's managed secrets, as `passman
// scan git --managed` does: export the fingerprint index, scan with it.
func scanManaged(tb testing.TB, l *core.Local, repo string) []scanner.Finding {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := l.ExportFingerprints(context.Background(), &buf); err != nil {
		tb.Fatal(err)
	}
	ix, err := fpindex.Read(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := scanner.New(scanner.Options{Managed: ix})
	if err != nil {
		tb.Fatal(err)
	}
	findings, _, err := s.ScanGit(context.Background(), repo, scanner.GitOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return findings
}
