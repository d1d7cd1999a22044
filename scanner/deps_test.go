package scanner_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestScannerLinksLittle guards what a scan costs to start: the scanner
// package must not reach the store, server, policy or rotation code, nor
// the dependencies that make passman's executable large and its package
// inits slow (etcd, gRPC, OPA, Prometheus, pgx, go-github). A program that
// only scans then starts in a third of passman's time (docs/benchmarks.md).
func TestScannerLinksLittle(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not installed")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/passman-dev/passman/scanner").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := []string{
		"go.etcd.io/etcd/", "google.golang.org/grpc", "github.com/open-policy-agent/",
		"github.com/prometheus/", "github.com/jackc/pgx", "github.com/google/go-github",
		"github.com/passman-dev/passman/core", "github.com/passman-dev/passman/server",
		"github.com/passman-dev/passman/policy", "github.com/passman-dev/passman/rotation",
		"github.com/passman-dev/passman/client", "github.com/passman-dev/passman/store",
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 20 {
		t.Fatalf("go list -deps gave %d packages: %s", len(pkgs), out)
	}
	for _, pkg := range pkgs {
		for _, b := range banned {
			if strings.HasPrefix(pkg, b) {
				t.Errorf("the scanner links %s", pkg)
			}
		}
	}
}
